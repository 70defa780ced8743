"""Quarantine: an input that cannot be processed is kept, with its reason, where only the owner
can read it (it still holds PHI), and never reaches an output tree."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from deid_pipeline.core.atomic import write_atomically

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700
# A reason file is one line, "relpath<TAB>reason": input names may hold tabs and newlines.
ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def quarantine_copy(source: Path, target: Path, reason_file: Path, relpath: str,
                    reason: str) -> None:
    """Copy `source` to `target` and write `reason_file` ("relpath<TAB>reason", with backslash,
    tab, newline and carriage return escaped as in Python). A symbolic link is recorded, never
    followed: what it leads to is in the drop already, or not the drop's to keep."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIR)
    # It may exist already, made under someone else's umask; the names in it can hold PHI.
    os.chmod(target.parent, OWNER_ONLY_DIR)
    if not source.is_symlink():
        try:
            write_atomically(target, lambda tmp: shutil.copyfile(source, tmp))
            os.chmod(target, OWNER_ONLY_FILE)
        except OSError:
            pass  # unreadable input: the reason file still records it
    line = f"{relpath.translate(ESCAPES)}\t{reason.translate(ESCAPES)}\n"
    write_atomically(reason_file, lambda tmp: tmp.write_text(line))
    os.chmod(reason_file, OWNER_ONLY_FILE)


def read_reason(reason_file: Path) -> tuple[str, str]:
    """The relative path and the reason a reason file records, unescaped."""
    relpath, reason = reason_file.read_text().rstrip("\n").split("\t")
    return _unescape(relpath), _unescape(reason)


def _unescape(text: str) -> str:
    return re.sub(r"\\[\\tnr]", lambda match: UNESCAPES[match.group()], text)
