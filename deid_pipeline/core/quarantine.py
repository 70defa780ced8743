"""Quarantine: an input that cannot be processed is kept, with its reason, where only the owner
can read it (it still holds PHI), and never reaches an output tree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from deid_pipeline.core.atomic import write_atomically

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700


def quarantine_copy(source: Path, target: Path, reason_file: Path, relpath: str,
                    reason: str) -> None:
    """Copy `source` to `target` and write `reason_file` ("relpath<TAB>reason")."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIR)
    try:
        write_atomically(target, lambda tmp: shutil.copyfile(source, tmp))
        os.chmod(target, OWNER_ONLY_FILE)
    except OSError:
        pass  # unreadable input: the reason file still records it
    write_atomically(reason_file, lambda tmp: tmp.write_text(f"{relpath}\t{reason}\n"))
    os.chmod(reason_file, OWNER_ONLY_FILE)
