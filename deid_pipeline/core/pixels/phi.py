"""Decide which recognised words are PHI, each with the reason that decided it.

In order: the file's own identifying values (read before tag de-identification; OCR errors
tolerated), PHI patterns (dates, times, long digit runs, ID-like tokens, initials, sex markers),
an optional NER model, then an allow-list of safe annotations. A line that holds PHI is PHI as a
whole, but for the words the allow-list names (labels such as "Name:", orientation letters):
burned-in PHI comes in runs ("DOE JANE [F] 01.03.2012"), and a run is hidden whole even where OCR
misread one of its words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from deid_pipeline.core.deid.free_text import PHI_PATTERNS, SpanFinder
from deid_pipeline.core.deid.identifiers import CLINICAL_ABBREVIATIONS, IdentifyingValues
from deid_pipeline.core.pixels.ocr import Box, TextLine, Word


class Reason(str, Enum):
    NAME = "metadata:name"
    INITIALS = "metadata:initials"
    IDENTIFIER = "metadata:identifier"
    PLACE = "metadata:place"
    DATE = "metadata:date"
    AGE = "metadata:age"
    SEX = "metadata:sex"
    TEXT_PATTERN = "pattern:date-phone-id"
    TIME_PATTERN = "pattern:time"
    DIGITS_PATTERN = "pattern:digits"
    INITIALS_PATTERN = "pattern:initials"
    NER = "model:ner"
    SAME_LINE = "line:with-phi"
    ALL_TEXT = "mode:all-text"
    SAFE = "allow-list"
    UNMATCHED = "unmatched"


# Burned-in annotations that identify nobody: orientation, views, positions, acquisition and
# display parameters, labels of the PHI fields themselves, units.
SAFE_WORDS = frozenset("""
L R A P H F S I LT RT LEFT RIGHT ANT POST SUP INF AP PA LAT LATERAL LL RL OBL OBLIQUE
PORTABLE SUPINE PRONE ERECT UPRIGHT SEMI SEMI-UPRIGHT DECUBITUS STANDING SITTING CHEST ABDOMEN
PELVIS HEAD NECK SPINE KNEE HAND FOOT WRIST ANKLE SHOULDER HIP SKULL BREAST CC MLO XCC
AXIAL AX COR CORONAL SAG SAGITTAL VIEW VIEWS SCOUT LOCALIZER INSP EXP
KV KVP MA MAS MS MSEC SEC S MM CM M HZ MHZ DB HU W L C WW WL WINDOW LEVEL CENTER WIDTH
SE SER SERIES IM IMG IMAGE SL SLICE THK THICKNESS LOC POS TR TE TI FA FOV MATRIX NEX ET
GAIN DEPTH FR FPS MI TIS TIB TIC COMP DR PWR PRF WF ZOOM
NO NUM NUMBER OF
""".split()) | CLINICAL_ABBREVIATIONS
# Labels of PHI fields: safe alone, hidden with the value they label (a line holding PHI), as
# MIDI-B's pixels_hidden reads the whole box of a field.
FIELD_LABELS = frozenset("""
NAME PATIENT PT ID DOB BIRTH DATE STUDY AGE SEX INSTITUTION HOSPITAL MRN ACC ACCESSION
""".split())
# OCR reads digits in a mostly-digit token as look-alike letters now and then.
DIGIT_LOOKALIKES = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "|": "1",
                                  "Z": "2", "S": "5", "B": "8", "G": "6"})
LETTER_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "5": "S", "8": "B", "6": "G", "2": "Z"})
TIME_PATTERN = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\s*(?:AM|PM)?\b", re.IGNORECASE)
SEX_MARKER = re.compile(r"^[\[(]\s*[MFO]\s*[\])]$", re.IGNORECASE)
INITIALS = re.compile(r"^[A-Z]{2,4}$")
WORD_CHARS = re.compile(r"[^A-Z0-9]")


def ages_of(ds) -> list[str]:
    """The ages a device may print: Patient's Age, and the whole years from birth to each
    study, series or acquisition date (often printed where the header has no age)."""
    from deid_pipeline.core.deid.identifiers import parse_da

    ages = [str(ds.get("PatientAge", "") or "")]
    birth = parse_da(str(ds.get("PatientBirthDate", "") or ""))
    if birth is not None:
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            day = parse_da(str(ds.get(keyword, "") or ""))
            if day is not None and day >= birth:
                before_birthday = (day.month, day.day) < (birth.month, birth.day)
                ages.append(str(day.year - birth.year - before_birthday))
    return [a for a in ages if a]


@dataclass(frozen=True)
class WordVerdict:
    text: str
    box: Box
    is_phi: bool
    reason: Reason
    score: float


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, stopping early once it exceeds `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def tolerance(length: int) -> int:
    """OCR errors forgiven, scaled to length: none up to 3 characters, 1 up to 7, then 2."""
    return 0 if length <= 3 else 1 if length <= 7 else 2


def as_letters(token: str) -> str:
    """A token that is mostly letters, with look-alike digits read as the letters they are."""
    letters = sum(c.isalpha() for c in token)
    return token.translate(LETTER_LOOKALIKES) if letters * 2 >= len(token) else token


def normalise(text: str) -> str:
    return WORD_CHARS.sub("", text.upper())


def as_digits(token: str) -> str:
    """A token that is mostly digits, with look-alike letters read as the digits they are."""
    digits = sum(c.isdigit() for c in token)
    return token.translate(DIGIT_LOOKALIKES) if digits * 2 >= len(token) else token


class PixelPhiJudge:
    """Judges the lines OCR read in one file, knowing that file's identifying values."""

    def __init__(self, known: IdentifyingValues, *, ages: Iterable[str] = (),
                 sex: str | None = None, finders: Sequence[SpanFinder] = (),
                 redact_all_text: bool = False) -> None:
        self.name_parts = {p for p in known.name_parts if len(p) >= 2}
        self.initials = set(known.initials)
        self.ids = {normalise(i) for i in known.ids if len(normalise(i)) >= 3}
        self.place_words = {w for p in known.places for w in re.findall(r"[A-Z0-9]{3,}", p)
                            if w not in SAFE_WORDS}
        self.date_forms = {normalise(d) for d in known.date_renderings()}
        self.ages = {str(int(a)) for a in (re.sub(r"\D", "", x) for x in ages) if a}
        self.sex = (sex or "").upper()[:1] or None
        self.finders = finders
        self.redact_all_text = redact_all_text

    # -- one word against the file's own values ----------------------------------------------
    def metadata_reason(self, token: str) -> Reason | None:
        if not token:
            return None
        digits = as_digits(token)
        if any(len(f) >= 6 and (digits == f or edit_distance(digits, f, 1) <= 1)
               for f in self.date_forms):
            return Reason.DATE
        if any(digits == i or (len(i) >= 6 and edit_distance(digits, i, 1) <= 1)
               for i in self.ids):
            return Reason.IDENTIFIER
        token = as_letters(token)
        if token in self.initials:
            return Reason.INITIALS
        limit = tolerance(len(token))
        # A long part inside a token is the part too: hyphenated names and places read as one
        # word ("MAYNARD-CLARKE").
        if any(edit_distance(token, part, limit) <= limit or (len(part) >= 4 and part in token)
               for part in self.name_parts if len(part) >= 3 or token == part):
            return Reason.NAME
        if any(edit_distance(token, word, limit) <= limit or (len(word) >= 4 and word in token)
               for word in self.place_words):
            return Reason.PLACE
        if digits in self.ages:
            return Reason.AGE
        return None

    # -- a whole line ---------------------------------------------------------------------------
    def judge(self, line: TextLine) -> list[WordVerdict]:
        words = line.words or [Word(line.text, line.box, line.score)]
        if self.redact_all_text:
            return [WordVerdict(w.text, w.box, True, Reason.ALL_TEXT, w.score) for w in words]
        # The file's own values decide first; patterns and the model only where they say nothing.
        reasons = [self.metadata_reason(normalise(w.text)) for w in words]
        for index, span_reason in enumerate(self._span_reasons(words)):
            if reasons[index] is None:
                reasons[index] = span_reason
        for index, word in enumerate(words):
            if reasons[index] is None:
                reasons[index] = self._word_reason(word.text)
        has_phi = any(r not in (None, Reason.SAFE) for r in reasons)
        verdicts = []
        for word, reason in zip(words, reasons, strict=True):
            token = normalise(word.text)
            sex_letter = token in ("M", "F", "O") and token == self.sex
            if reason is Reason.SAFE and has_phi and sex_letter:
                reason = Reason.SEX  # "DOE JOHN M": the patient's sex, not metres
            if reason is None:
                if has_phi and (sex_letter or token not in SAFE_WORDS):
                    reason = Reason.SEX if sex_letter else Reason.SAME_LINE
                else:
                    reason = Reason.SAFE if token in SAFE_WORDS | FIELD_LABELS else Reason.UNMATCHED
            elif reason is Reason.SAFE and has_phi and normalise(word.text) in FIELD_LABELS:
                reason = Reason.SAME_LINE
            verdicts.append(WordVerdict(word.text, word.box,
                                        reason not in (Reason.SAFE, Reason.UNMATCHED), reason,
                                        word.score))
        return verdicts

    def _word_reason(self, text: str) -> Reason | None:
        if SEX_MARKER.match(text.strip()):
            return Reason.SEX
        token = normalise(text)
        if token in SAFE_WORDS | FIELD_LABELS:
            return Reason.SAFE
        # "RAK/PA": initials joined by a slash (reader/transcriber) are initials too.
        parts = [p for p in re.split(r"[/\\]", text.strip(" .:,;")) if p]
        if len(parts) > 1 and any(INITIALS.match(p) and p not in CLINICAL_ABBREVIATIONS
                                  and p not in SAFE_WORDS for p in parts):
            return Reason.INITIALS_PATTERN
        if len(as_digits(token)) >= 5 and as_digits(token).isdigit():
            return Reason.DIGITS_PATTERN
        if INITIALS.match(text.strip(" .:,;")) and token not in CLINICAL_ABBREVIATIONS:
            return Reason.INITIALS_PATTERN
        return None

    def _span_reasons(self, words: Sequence[Word]) -> list[Reason | None]:
        """Reasons found on the line's text as a whole (patterns spanning words: "2012 Jan 03",
        "10:42:07"; model spans), given to every word a span touches."""
        text, starts = "", []
        for word in words:
            starts.append(len(text))
            text += word.text + " "
        spans: list[tuple[int, int, Reason]] = []
        for pattern in PHI_PATTERNS:
            spans += [(*m.span(), Reason.TEXT_PATTERN) for m in pattern.finditer(text)]
        spans += [(*m.span(), Reason.TIME_PATTERN) for m in TIME_PATTERN.finditer(text)]
        for finder in self.finders:
            spans += [(s, e, Reason.NER) for s, e in finder(text)]
        reasons: list[Reason | None] = [None] * len(words)
        for index, (start, word) in enumerate(zip(starts, words, strict=True)):
            end = start + len(word.text)
            for span_start, span_end, reason in spans:
                if span_start < end and start < span_end:
                    reasons[index] = reason
                    break
        return reasons
