"""Write files so that readers only ever see complete ones."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

# Temporary names start with a dot so folder scanners skip them.
TEMPORARY_GLOB = ".*.tmp"

Written = TypeVar("Written")


def write_staged(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a hidden temporary file beside `path` and return it, complete but not
    yet visible: the caller renames it into place (os.replace) or deletes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomically(path: Path, write: Callable[[Path], Written]) -> Written:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place; what
    `write` returned.

    The rename is atomic on one file system: a crash leaves either the old file or the new one,
    never half of either.
    """
    returned: list[Written] = []
    tmp = write_staged(path, lambda staged: returned.append(write(staged)))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return returned[0]


def remove_stale_temporaries(root: Path) -> int:
    """Delete the hidden temporaries a killed run left under `root`; how many there were."""
    stale = [p for p in Path(root).rglob(TEMPORARY_GLOB) if p.is_file()] if Path(root).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
