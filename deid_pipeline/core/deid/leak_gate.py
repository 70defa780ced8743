"""The last check before an output becomes visible: does any identifying value of the original
file survive anywhere in the written dataset (any depth, private blocks, file meta) or its path?

Findings name the element and the kind of value, never the value itself.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from pydicom.dataset import Dataset

from deid_pipeline.core.deid.identifiers import IdentifyingValues

# Shorter name parts ("LI", "NG") occur inside ordinary words and codes too often to judge.
MIN_NAME_PART = 3
MIN_ID = 4
# Dates in date-valued elements are the policy's business (shifted, or kept by a retain-dates
# option); the gate looks for dates where they do not belong: in text.
DATE_VRS = frozenset({"DA", "DT", "TM"})


def _pattern(phrases: set[str]) -> re.Pattern[str] | None:
    phrases = {p for p in phrases if p}
    if not phrases:
        return None
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![A-Z0-9])(?:{alternatives})(?![A-Z0-9])")


class LeakGate:
    def __init__(self, original: IdentifyingValues) -> None:
        self.patterns = {
            "name": _pattern({p for p in original.name_parts if len(p) >= MIN_NAME_PART}),
            "identifier": _pattern({i for i in original.ids if len(i) >= MIN_ID}),
            "place or contact": _pattern({p for p in original.places if len(p) >= MIN_ID}),
            "date": _pattern(original.date_renderings()),
        }

    def findings(self, ds: Dataset, output_relpath: str,
                 generated: Collection[str] = ()) -> list[str]:
        """'kind in place' for every identifying value found. `generated`: paths of elements
        whose whole value the engine wrote; a word they share with the original is chance."""
        found = [f"{kind} in the output path" for kind, pattern in self.patterns.items()
                 if pattern and pattern.search(output_relpath.upper())]
        meta = getattr(ds, "file_meta", None)
        sources = [("file meta", meta)] if meta is not None else []
        for label, dataset in sources + [("", ds)]:
            for path, vr, text in _texts(dataset, label):
                if path in generated:
                    continue
                for kind, pattern in self.patterns.items():
                    if kind == "date" and vr in DATE_VRS:
                        continue
                    if pattern and pattern.search(text.upper()):
                        found.append(f"{kind} in {path}")
        return found


def _texts(ds: Dataset, prefix: str) -> Iterator[tuple[str, str, str]]:
    for elem in ds:
        path = f"{prefix}({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or ()):
                yield from _texts(item, f"{path}[{index}].")
            continue
        value = elem.value
        if value is None or elem.tag == 0x7FE00010:
            continue
        if isinstance(value, bytes):
            # Unknown-VR private data may hide text: read it as Latin-1 so any bytes decode.
            if elem.VR in ("UN", "OB") and len(value) <= 1 << 16:
                yield path, elem.VR, value.decode("latin-1")
            continue
        yield path, elem.VR, "\\".join(map(str, value)) if elem.VM > 1 else str(value)
