"""Fixtures shared across the suite. The synthetic corpus is generated once per session: tests
read it, never change it."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from deid_pipeline.core.synth import CorpusSummary, generate_corpus

SMALL_CORPUS_PATIENTS = 4
SMALL_CORPUS_SEED = 0


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> CorpusSummary:
    return generate_corpus(tmp_path_factory.mktemp("small_corpus"),
                           SMALL_CORPUS_PATIENTS, SMALL_CORPUS_SEED)


@pytest.fixture
def deid_secret(monkeypatch) -> str:
    monkeypatch.delenv("DEID_SECRET_FILE", raising=False)
    monkeypatch.setenv("DEID_SECRET", "test-secret-not-for-production")
    return "test-secret-not-for-production"


@pytest.fixture
def deny_access(monkeypatch) -> Callable[[Path], None]:
    """`deny_access(folder)`: the process is told that the folder cannot be read, as the kernel
    tells a user without the permission (root, who may run the suite, reads any folder)."""
    access = os.access

    def deny(folder: Path) -> None:
        monkeypatch.setattr(os, "access", lambda path, mode, **options:
                            os.fspath(path) != os.fspath(folder)
                            and access(path, mode, **options))

    return deny
