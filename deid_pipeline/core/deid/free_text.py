"""Clean free text span by span: PHI out, clinical words kept.

Spans come from the file's own identifying values (exact, case-insensitive, on word boundaries;
long ones inside words too)
and from patterns that catch PHI the header does not hold (dates, phones, e-mail, ID-like tokens,
street addresses). An optional NER model adds spans through `extra_spans`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection, Iterable

from faker.providers.person.en_US import Provider as UsNames

from deid_pipeline.core.deid.identifiers import MONTHS, IdentifyingValues, found_inside_words

Span = tuple[int, int]
SpanFinder = Callable[[str], Iterable[Span]]

_MONTH = "|".join(MONTHS)
# A phrase counts where it stands as a whole word: not next to one of these (in upper case).
_WORD_CHARACTERS = frozenset(string.ascii_uppercase + string.digits)
PHI_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\b\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}\b",  # 03/01/2012, 2012-01-03, 01.03.2012
    rf"\b\d{{1,2}}[\s\-]?(?:{_MONTH})[a-z]*\.?[\s\-,]*\d{{2,4}}\b",  # 03-JAN-2012, 3 Jan 2012
    rf"\b(?:{_MONTH})[a-z]*\.?\s+\d{{1,2}},?\s+\d{{4}}\b",  # Jan 03, 2012
    rf"\b\d{{4}}\s+(?:{_MONTH})[a-z]*\.?\s+\d{{1,2}}\b",  # 2012 Jan 03
    r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b",  # 20120103
    r"(?:\+?\d{1,2}[\s.\-]?)?\(?\b\d{3}\)?[\s.\-]\d{3}[\s.\-]\d{4}\b(?:\s*(?:x|ext\.?)\s*\d+)?",
    r"\b[\w.+\-]+@[\w\-]+\.[\w.\-]+\b",  # e-mail
    r"\b\d{3}-\d{2}-\d{4}\b",  # SSN
    # A label, then an identifier holding a digit: "ID: AB-7781", "MRN12345", not "identified".
    r"\b(?:MRN|ID|ACC)[:#\s]*(?=[A-Z\-]*\d)[A-Z0-9\-]{4,}\b",
    r"\b[A-Z]{0,4}\d{6,}[A-Z0-9]*\b",  # MRN-like and other long digit runs
    # Street address: capitalised name words and a street word; abbreviations only as written
    # in addresses, so "3 month CT" and "2 views Dr" stay.
    r"\b\d{1,6}\s+(?-i:(?:[A-Z][A-Za-z]+\s){1,3})(?:Street|Avenue|Road|Boulevard|Lane|Drive"
    r"|Court|Way|Place|Suite|(?-i:St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Apt))\b\.?",
))

# Names the header does not hold: relatives, staff, visitors. Two general cues: a title or a
# relation right before capitalised words ("brother David Thornton", "Dr. Ames"), and a common
# given name followed by a capitalised word ("David Thornton"). The pattern's `phi` group is the
# span removed; the cue word stays.
_CAPITALISED = r"[A-Z][a-zA-Z'\-]+"
CUED_NAME = re.compile(
    r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|brother|sister|mother|father|wife|husband|son|daughter"
    r"|spouse|partner|friend|guardian|caregiver|nurse|technologist|tech)\.?\s+"
    rf"(?P<phi>(?-i:{_CAPITALISED}(?:\s+{_CAPITALISED})?))",
    re.IGNORECASE)
GIVEN_NAMES = sorted({*UsNames.first_names_male, *UsNames.first_names_female}, key=len,
                     reverse=True)
GIVEN_AND_FAMILY_NAME = re.compile(
    rf"\b(?P<phi>(?:{'|'.join(GIVEN_NAMES)})\s+{_CAPITALISED})")
NAME_PATTERNS = (CUED_NAME, GIVEN_AND_FAMILY_NAME)


def known_phrases(known: IdentifyingValues) -> set[str]:
    return known.phrases() | known.initials


def literal_spans(text: str, phrases: Iterable[str]) -> list[Span]:
    """Every place a phrase occurs in `text` as a whole word, case-insensitively; a long one
    (found_inside_words) also inside a longer word, which then goes whole ("QUIMBLEFORTHS",
    "QuimbleforthZara"): what is left of it would be a fragment of the name. Plain string
    search: a file's phrases differ from the next file's, and compiling them into a pattern
    costs more than searching for each."""
    upper = text.upper()
    spans = []
    for phrase in phrases:
        if not phrase:
            continue
        start = upper.find(phrase)
        glued = start >= 0 and found_inside_words(phrase)  # most phrases are not there
        while start >= 0:
            end = start + len(phrase)
            if glued:
                spans.append(_word_around(upper, start, end))
            elif (start == 0 or upper[start - 1] not in _WORD_CHARACTERS) and (
                    end == len(upper) or upper[end] not in _WORD_CHARACTERS):
                spans.append((start, end))
            start = upper.find(phrase, start + 1)
    return spans


def _word_around(upper: str, start: int, end: int) -> Span:
    while start > 0 and upper[start - 1] in _WORD_CHARACTERS:
        start -= 1
    while end < len(upper) and upper[end] in _WORD_CHARACTERS:
        end += 1
    return start, end


class PhraseIndex:
    """A file's phrases by their first two characters: a text is searched only for the phrases
    that start with a pair of characters it holds (a file has a hundred phrases and more, dates
    written every way and names joined every way, and a text a few dozen characters, which
    hold most first letters but few of the pairs). Finds what `literal_spans` finds."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self.by_start: dict[str, list[str]] = {}
        for phrase in phrases:
            if phrase:
                self.by_start.setdefault(phrase[:2], []).append(phrase)
        self.single_characters = any(len(start) == 1 for start in self.by_start)

    def spans(self, text: str) -> list[Span]:
        by_start, upper = self.by_start, text.upper()
        starts = {upper[i:i + 2] for i in range(len(upper))}  # the last one a single character
        if self.single_characters:
            starts |= set(upper)
        candidates = [p for s in starts if s in by_start for p in by_start[s]]
        return literal_spans(text, candidates) if candidates else []


def pattern_spans(text: str) -> list[Span]:
    spans = _pattern_spans.get(text)
    if spans is None:
        spans = [m.span() for pattern in PHI_PATTERNS for m in pattern.finditer(text)]
        spans += [m.span("phi") for pattern in NAME_PATTERNS for m in pattern.finditer(text)]
        if len(_pattern_spans) >= _PATTERN_SPANS_KEPT:
            _pattern_spans.clear()
        _pattern_spans[text] = spans
    return list(spans)


# The patterns' spans in a text depend on the text alone, and a batch cleans the same
# descriptions, comments and protocol names in file after file.
_pattern_spans: dict[str, list[Span]] = {}
_PATTERN_SPANS_KEPT = 4096


def merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def clean_text(text: str, known: IdentifyingValues,
               extra_spans: Iterable[SpanFinder] = (),
               phrases: Collection[str] | PhraseIndex | None = None) -> str:
    """`text` with every PHI span removed and the whitespace left behind tidied. `phrases`:
    `known`'s phrases and initials (or their index), when the caller cleans many texts of one
    file."""
    if isinstance(phrases, PhraseIndex):
        spans = phrases.spans(text)
    else:
        spans = literal_spans(text, phrases if phrases is not None else known_phrases(known))
    spans += pattern_spans(text)
    for finder in extra_spans:
        spans += list(finder(text))
    if not spans:
        return text
    pieces, cursor = [], 0
    for start, end in merge(spans):
        pieces.append(text[cursor:start])
        cursor = end
    pieces.append(text[cursor:])
    cleaned = re.sub(r"[ \t]{2,}", " ", "".join(pieces))
    cleaned = re.sub(r"\s+([,.;:])", r"\1", cleaned)
    cleaned = re.sub(r"([,;:])\1+", r"\1", cleaned)
    return cleaned.strip(" ,;:-")
