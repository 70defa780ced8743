"""The last check before an output becomes visible: does any identifying value of the original
file survive anywhere in the written dataset (any depth, private blocks, file meta) or its path?

Two steps: a screen of the bytes written (everything but the pixel data value) for any of the
values, then, only where the screen hits, a reading of the written file element by element that
says where and judges the hit (a generated fake name may share a word with the original by
chance; a date element's date is the policy's business). Findings name the element and the kind
of value, never the value itself.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from functools import cached_property

from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset

from deid_pipeline.core.deid.identifiers import IdentifyingValues, found_inside_words

# Shorter Latin name parts ("LI", "NG") occur inside ordinary words and codes too often to judge.
MIN_NAME_PART = 3
MIN_ID = 4
# Dates in date-valued elements are the policy's business (shifted, or kept by a retain-dates
# option); the gate looks for dates where they do not belong: in text.
DATE_VRS = frozenset({"DA", "DT", "TM"})


def _ideographic(part: str) -> bool:
    """Two characters of Chinese, Japanese or Korean make a whole name part."""
    return len(part) >= 2 and all(ord(c) >= 0x2E80 for c in part)


def _pattern(phrases: set[str]) -> re.Pattern[str] | None:
    """Phrases as whole words, long ones with a letter (found_inside_words) inside longer
    words too."""
    phrases = {p for p in phrases if p}
    if not phrases:
        return None
    glued = {p for p in phrases if found_inside_words(p)}
    alternatives = [rf"(?<![A-Z0-9])(?:{_alternation(phrases - glued)})(?![A-Z0-9])"
                    if phrases - glued else "", _alternation(glued)]
    return re.compile("|".join(a for a in alternatives if a))


def _alternation(phrases: set[str]) -> str:
    return "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))


class LeakGate:
    def __init__(self, original: IdentifyingValues) -> None:
        parts = {p for p in original.name_parts if len(p) >= MIN_NAME_PART or _ideographic(p)}
        phrases = {
            "name": parts | original.joined_names,
            "identifier": {i for i in original.ids if len(i) >= MIN_ID},
            "place or contact": {p for p in original.places | original.joined_places()
                                 if len(p) >= MIN_ID},
            "date": original.date_renderings(),
        }
        self._phrases = phrases
        # A name joined into one word holds its parts, which the screen looks for already: it
        # needs the joined form only where every part is too short to be screened.
        self._screen = {value for values in phrases.values() for value in values} - {
            joined for joined in original.joined_names if any(p in joined for p in parts)}
        self._ascii = all(value.isascii() for value in self._screen)

    def may_leak(self, written: bytes | None, character_set: str | list[str] | None = None) -> bool:
        """False when none of the values occurs in `written` (the output's bytes but its pixel
        data value, its values encoded in `character_set`): nothing to judge. True sends the
        output to `findings`."""
        if written is None:
            return True
        codecs = convert_encodings(character_set or "ISO_IR 6")
        if len(codecs) > 1 and not self._ascii:
            return True  # ISO 2022 code extensions switch codecs mid-value: read element-wise
        # Decoding binary values too is harmless: they can only add hits for `findings` to judge.
        text = written.decode(codecs[0] if len(codecs) == 1 else "latin-1", "replace").upper()
        # str.find per value is a C-speed search; one regex alternation of all values is not.
        return any(value in text for value in self._screen)

    @cached_property
    def patterns(self) -> dict[str, re.Pattern[str] | None]:
        """Compiled only for an output the screen could not clear: a file's dates alone have
        a few hundred renderings."""
        return {kind: _pattern(values) for kind, values in self._phrases.items()}

    def path_findings(self, output_relpath: str) -> list[str]:
        if not self.may_leak(output_relpath.encode(), "ISO_IR 192"):
            return []
        return [f"{kind} in the output path" for kind, pattern in self.patterns.items()
                if pattern and pattern.search(output_relpath.upper())]

    def findings(self, ds: Dataset, output_relpath: str,
                 generated: Collection[str] = ()) -> list[str]:
        """'kind in place' for every identifying value found. `generated`: paths of elements
        whose whole value the engine wrote; a word they share with the original is chance."""
        found = self.path_findings(output_relpath)
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
