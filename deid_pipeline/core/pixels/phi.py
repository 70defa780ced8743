"""Decide which recognised words are PHI, each with the reason that decided it.

In order: the file's own identifying values (read before tag de-identification; OCR errors
tolerated), PHI patterns (dates, times, long digit runs, ID-like tokens, initials, sex markers),
an optional NER model, then an allow-list of safe annotations. A line that holds PHI is PHI as a
whole, but for the words the allow-list names (labels such as "Name:", orientation letters):
burned-in PHI comes in runs ("DOE JANE [F] 01.03.2012"), and a run is hidden whole even where OCR
misread one of its words.

OCR cuts and misreads what lies over anatomy or off the frame's edge, so a value is matched
also where it was read in pieces: lines the detector cut apart on one row are judged as one line,
adjacent words are matched joined ("2001 Jul05", "MA cus"), a safe word inside the file's own
value goes with it ("Medical Center"), and a name read cut short at a line's end gets the box of
the whole name.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from deid_pipeline.core.deid.free_text import PHI_PATTERNS, SpanFinder
from deid_pipeline.core.deid.identifiers import CLINICAL_ABBREVIATIONS, MONTHS, IdentifyingValues
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
    FIELD_VALUE = "line:field-value"
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
NO NUM NUMBER OF DLP CTDI CTDIVOL MGY GY DAP SAR
""".split()) | CLINICAL_ABBREVIATIONS
# An acquisition or display parameter with its value ("TE:1.6", "W:1400", "kVp=120", and as
# OCR reads it without the colon: "TE1.6", "L700"): safe when the label is a safe word, never
# a PHI field's label ("Age:57", "ID:1234" are values). Without a colon the value has at most
# four digits before any decimals (an ID with a letter before it has more).
PARAMETER = re.compile(
    r"^([A-Z]{1,6})\s*(?:[:=]\s*[-+]?\d+|[-+]?\d{1,4})(?:[.,]\d+)?\s*[A-Z%]{0,3}$", re.IGNORECASE)
# Mammography views with their side (ACR codes): "LCC", "RMLO", "LXCCL".
MAMMOGRAPHY_VIEW = re.compile(r"^[LR](?:CC|MLO|XCCL|XCCM|XCC|ML|LM|LMO|SIO|FB|CV|AT)$")
# Labels of PHI fields: safe alone, hidden with the value they label (a line holding PHI), as
# MIDI-B's pixels_hidden reads the whole box of a field.
FIELD_LABELS = frozenset("""
NAME PATIENT PT ID DOB BIRTH DATE STUDY AGE SEX INSTITUTION HOSPITAL MRN ACC ACCESSION
""".split())

# Labels whose value identifies the patient or the visit: what follows them on their line is
# that value, however it was read ("DOB: 1950-0" of a date cut short, a name misread).
VALUE_LABELS = FIELD_LABELS - {"STUDY"}


def awaits_value(text: str) -> bool:
    """Whether a line's last word `text` is a label whose value should follow it: one ending
    in a colon, or a PHI field's label whole or cut short where the detector stopped ("AC" of
    "ACC:")."""
    token = normalise(text)
    return text.rstrip().endswith(":") or (
        len(token) >= 2 and any(label.startswith(token) for label in FIELD_LABELS))


# OCR reads digits in a mostly-digit token as look-alike letters now and then.
DIGIT_LOOKALIKES = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "|": "1",
                                  "Z": "2", "S": "5", "B": "8", "G": "6"})
LETTER_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "5": "S", "8": "B", "6": "G", "2": "Z"})
TIME_PATTERN = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\s*(?:AM|PM)?\b", re.IGNORECASE)
SEX_MARKER = re.compile(r"^[\[(]\s*[MFO]\s*[\])]$", re.IGNORECASE)
INITIALS = re.compile(r"^[A-Z]{2,4}$")
AGE_TOKEN = re.compile(r"0*(\d{1,3})(?:Y|YR|YRS|YO|YEARS)?")  # "45", "045Y", "45YRS"
WORD_CHARS = re.compile(r"[^A-Z0-9]")
# Dates OCR read with a space lost or a digit for a letter ("2001 Jul05", "1999 5ep 08"); the
# letters-for-digits reading of the line is searched too.
_MONTH = "|".join(MONTHS)
LOOSE_DATE_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    rf"\b(?:19|20)\d{{2}}\s*(?:{_MONTH})[A-Z]*\.?\s*\d{{1,2}}\b",
    rf"\b\d{{1,2}}\s*(?:{_MONTH})[A-Z]*\.?\s*(?:19|20)\d{{2}}\b",
))
# Lines on one row closer than this many line heights were cut apart by the detector (a word
# over anatomy, a gap in faint ink): judged as one line.
ROW_JOIN_GAP = 1.0
# A wrapped value's second line starts within this many line heights of where the value starts
# on the line above, at most WRAP_GAP line heights below it.
WRAP_ALIGN, WRAP_GAP = 0.6, 1.0
# Patterns that any few letters or digits match (initials, digit runs, an age of a digit or
# two) count only on words read at least this surely: anatomy and noise read as text come out
# as such tokens, unsurely.
LOOSE_PATTERNS = (Reason.INITIALS_PATTERN, Reason.DIGITS_PATTERN, Reason.AGE)
LOOSE_PATTERN_MIN_SCORE = 0.5
INITIALS_REASONS = (Reason.INITIALS, Reason.INITIALS_PATTERN)
# Values beside which a bare number equal to the patient's age is taken for the age.
CONTEXT_REASONS = (Reason.NAME, Reason.DATE, Reason.IDENTIFIER, Reason.SEX, Reason.INITIALS)
# What a word at a line's end may be when it is a name or place cut short there.
CUT_CANDIDATES = (None, Reason.SAFE, Reason.INITIALS_PATTERN, Reason.NAME, Reason.PLACE)
# Reasons that name one value of the file's own: neighbours with the same one are one value.
VALUE_REASONS = (Reason.NAME, Reason.PLACE, Reason.DATE, Reason.IDENTIFIER)
# Neighbours hidden as one block: words of one value, or of one pattern's span (a date the
# file does not hold as it reads: "1999 5ép 08").
BRIDGED_REASONS = (*VALUE_REASONS, Reason.TEXT_PATTERN)
# Words read apart are matched joined, up to this many at a time.
JOINED_WORDS = 3
# A date read cut short at a line's end or start: up to this many words, this many characters
# (letters and digits) at least, or a year led by its separator at the start (".2017").
DATE_FRAGMENT_WORDS, DATE_FRAGMENT_CHARS = 3, 6
DATE_YEAR_TAIL = re.compile(r"^[./-](?:19|20)\d{2}$")
YEAR = re.compile(r"^(?:19|20)\d{2}")


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


def _value_runs(reasons: Sequence[Reason | None]) -> list[range]:
    """The runs of two or more neighbouring words with one reason that is hidden as a block."""
    runs, start = [], 0
    for i in range(1, len(reasons) + 1):
        if i == len(reasons) or reasons[i] is not reasons[start] \
                or reasons[start] not in BRIDGED_REASONS:
            if i - start > 1 and reasons[start] in BRIDGED_REASONS:
                runs.append(range(start, i))
            start = i
    return runs


def _bare_ages_in_context(words: Sequence[Word], tokens: Sequence[str],
                         reasons: list[Reason | None]) -> None:
    """Drop an age read as a bare number ("10", no unit) on a line with no age label and no
    other value of the file's own: alone among numbers it is as likely a series, image or
    slice number."""
    context = any(normalise(w.text).startswith("AGE") for w in words) or any(
        r in CONTEXT_REASONS for r in reasons)
    for index, token in enumerate(tokens):
        if reasons[index] is Reason.AGE and token.isdigit() and not context:
            reasons[index] = None


def as_digits(token: str) -> str:
    """A token that is mostly digits, with look-alike letters read as the digits they are."""
    digits = sum(c.isdigit() for c in token)
    return token.translate(DIGIT_LOOKALIKES) if digits * 2 >= len(token) else token


def _ascii_fold(text: str) -> str:
    """`text` without accents ("É" is "E")."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _unaccented(text: str) -> str:
    """`text` with each accented letter as its base letter, one character for one."""
    return "".join(unicodedata.normalize("NFKD", c)[0] for c in text)


def _value_of(text: str) -> str:
    """A word's value without the field label OCR glued to it ("Age:57" is 57)."""
    label, colon, value = text.partition(":")
    return value if colon and value and normalise(label) in FIELD_LABELS else text


def _field_values(words: Sequence[Word], reasons: list[Reason | None]) -> None:
    """Words nothing else decided, or single letters (an initial, not "L" for left), that
    follow a label of VALUE_LABELS ("DOB:", "ID:", "Age:57" glued) up to the next label on
    the line are its value. A label is two letters or more before a colon ("M:" is "Mar"
    misread)."""
    in_value = False
    for i, word in enumerate(words):
        label, colon, value = word.text.strip().partition(":")
        token = normalise(label)
        if colon and len(token) >= 2:
            in_value = token in VALUE_LABELS
            if not (in_value and value):
                continue
        undecided = reasons[i] is None or (reasons[i] is Reason.SAFE and len(token) <= 1)
        if in_value and undecided:
            reasons[i] = Reason.FIELD_VALUE


def visual_lines(lines: Sequence[TextLine]) -> list[TextLine]:
    """`lines` with those the detector cut apart on one row joined (in reading order): of
    similar heights, overlapping vertically by most of the lower one, and closer than
    ROW_JOIN_GAP line heights."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda line: line.box[0]):
        for row in rows:
            if _continues(row[-1].box, line.box):
                row.append(line)
                break
        else:
            rows.append([line])
    joined = [row[0] if len(row) == 1 else _joined(row) for row in rows]
    return sorted(joined, key=lambda line: (line.box[1], line.box[0]))


def _continues(left: Box, right: Box) -> bool:
    ha, hb = left[3] - left[1] + 1, right[3] - right[1] + 1
    overlap = min(left[3], right[3]) - max(left[1], right[1]) + 1
    return (min(ha, hb) >= 0.6 * max(ha, hb) and overlap >= 0.6 * min(ha, hb)
            and right[0] - left[2] <= ROW_JOIN_GAP * min(ha, hb) and right[2] > left[2])


def _joined(row: list[TextLine]) -> TextLine:
    boxes = [line.box for line in row]
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
           max(b[3] for b in boxes))
    words = [w for line in row for w in (line.words or [Word(line.text, line.box, line.score)])]
    return TextLine(box, " ".join(line.text for line in row), min(line.score for line in row),
                    words, min(line.det_score for line in row), row[0].view)


def _hide_wrapped_values(judged: list[list[WordVerdict]]) -> None:
    """A line of PHI alone under a line of PHI, starting where a value of that line starts
    ("Institution Name: Maynard-Clarke Medical" over "Clinic"), is that value wrapped: its
    last box reaches as far right as the value above, so that the value is hidden as one block
    (the way a reader, and MIDI-B's answer boxes, see a wrapped field)."""
    rows = sorted((v for v in judged if v and all(w.is_phi for w in v)),
                  key=lambda v: v[0].box[1])
    for below in rows:
        height = below[0].box[3] - below[0].box[1] + 1
        above = [v for v in judged if v and v is not below and _just_above(v, below, height)]
        if not above:
            continue
        line = max(above, key=lambda v: v[0].box[3])
        starts = [i for i, w in enumerate(line)
                  if abs(w.box[0] - below[0].box[0]) <= WRAP_ALIGN * height and i > 0]
        if starts and all(w.is_phi for w in line[starts[0]:]):
            last = below[-1]
            below[-1] = replace(last, box=(*last.box[:2], max(last.box[2], line[-1].box[2]),
                                           last.box[3]))


def _just_above(line: list[WordVerdict], below: list[WordVerdict], height: int) -> bool:
    # No height test: lines set this close touch, and the ink of one reaches into the other.
    bottom = max(w.box[3] for w in line)
    return (-0.5 * height <= below[0].box[1] - bottom <= WRAP_GAP * height
            and line[0].box[0] < below[0].box[0] and line[0].box[1] < below[0].box[1])


class PixelPhiJudge:
    """Judges the lines OCR read in one file, knowing that file's identifying values."""

    def __init__(self, known: IdentifyingValues, *, ages: Iterable[str] = (),
                 sex: str | None = None, finders: Sequence[SpanFinder] = (),
                 redact_all_text: bool = False) -> None:
        # Devices print names in ASCII: "CÉLINA" is burned in as "CELINA".
        self.name_parts = {f for p in known.name_parts for f in (p, _ascii_fold(p)) if len(f) >= 2}
        self.initials = set(known.initials)
        self.ids = {normalise(i) for i in known.ids if len(normalise(i)) >= 3}
        place_words = {w for p in known.places for w in re.findall(r"[A-Z0-9]{2,}", _ascii_fold(p))}
        self.place_words = {w for w in place_words if len(w) >= 3} - SAFE_WORDS
        # Words of the file's own values that are also safe alone ("CENTER" of "Medical
        # Center", "OF" of "University of ..."): PHI beside the rest of their value.
        self.value_words = {Reason.NAME: self.name_parts, Reason.PLACE: place_words}
        self.date_forms = {normalise(d) for d in known.date_renderings()}
        self.year_first_dates = {d for d in known.date_renderings() if YEAR.match(d)}
        self.ages = {str(int(a)) for a in (re.sub(r"\D", "", x) for x in ages) if a}
        self.sex = (sex or "").upper()[:1] or None
        self.finders = finders
        self.redact_all_text = redact_all_text

    # -- one word against the file's own values ----------------------------------------------
    def metadata_reason(self, token: str) -> Reason | None:
        if not token:
            return None
        digits = as_digits(token)
        # Also as read: the look-alike reading turns a month's letters into digits ("AUG").
        if any(len(f) >= 6 and (form == f or edit_distance(form, f, 1) <= 1)
               for form in {digits, token} for f in self.date_forms):
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
        age = AGE_TOKEN.fullmatch(digits)
        if age and age.group(1) in self.ages:
            return Reason.AGE
        return None

    def _joined_reason(self, token: str) -> Reason | None:
        """What words read apart are, joined: a date, an ID or a name part (not an age or
        initials, which short pieces would match by chance)."""
        reason = self.metadata_reason(token) if len(token) >= 4 else None
        return reason if reason in (Reason.DATE, Reason.IDENTIFIER, Reason.NAME,
                                    Reason.PLACE) else None

    def _cut_value(self, token: str) -> tuple[Reason, int, int] | None:
        """A name or place word read cut short: its kind and how many characters it lacks
        before and after `token`, or None. Exact pieces of four letters or more from anywhere in
        the word, or its start (two letters; one misread from three on: "MAP" of "MARCUS");
        the longest such word."""
        token = as_letters(token)
        if len(token) < 2 or not token.isalpha():
            return None
        best: tuple[Reason, int, int] | None = None
        for kind, values in self.value_words.items():
            for value in values:
                if len(value) <= len(token):
                    continue
                if len(token) >= 4 and token in value:
                    before = value.index(token)
                elif edit_distance(token, value[:len(token)], 1) <= (len(token) >= 3):
                    before = 0
                else:
                    continue
                cut = (kind, before, len(value) - len(token) - before)
                if best is None or cut[1] + cut[2] > best[1] + best[2]:
                    best = cut
        return best

    def _cut_number(self, token: str, reason: Reason | None) -> tuple[int, int]:
        """Characters missing before and after a date or ID matched with its first or last one
        or two characters lost (read cut short, or the detector's box starting inside it),
        else (0, 0)."""
        values = {Reason.DATE: self.date_forms, Reason.IDENTIFIER: self.ids}.get(reason, ())
        digits = as_digits(token)
        before = [len(v) - len(digits) for v in values
                  if 0 < len(v) - len(digits) <= 2 and v.endswith(digits)
                  and not v.startswith(digits)]
        after = [len(v) - len(digits) for v in values
                 if 0 < len(v) - len(digits) <= 2 and v.startswith(digits)]
        return max(before, default=0), max(after, default=0)

    def _cut_year(self, token: str) -> int:
        """Characters missing after a year that is all that was read of one of the file's
        dates written year first ("1950" of 1950-01-20, the rest over the skull's rim): the
        most any such rendering lacks, separators counted; 0 for any other token."""
        year = as_digits(token)
        if len(year) != 4 or not YEAR.match(year):
            return 0
        return max((len(d) - len(year) for d in self.year_first_dates if d.startswith(year)),
                   default=0)

    # -- a frame, a line --------------------------------------------------------------------------
    def judge_frame(self, lines: Sequence[TextLine]) -> list[WordVerdict]:
        """Every word of one frame's lines: lines the detector cut apart on a row judged as
        one, and a value wrapped onto the next line hidden as one block."""
        judged = [self.judge(line) for line in visual_lines(lines)]
        _hide_wrapped_values(judged)
        return [verdict for verdicts in judged for verdict in verdicts]

    def judge(self, line: TextLine) -> list[WordVerdict]:
        words = line.words or [Word(line.text, line.box, line.score)]
        if self.redact_all_text:
            return [WordVerdict(w.text, w.box, True, Reason.ALL_TEXT, w.score) for w in words]
        tokens = [normalise(_value_of(w.text)) for w in words]
        # The file's own values decide first; patterns and the model only where they say nothing.
        reasons = [self.metadata_reason(t) for t in tokens]
        self._joined_reasons(tokens, reasons)
        self._value_neighbours(tokens, reasons)
        self._date_fragments(words, reasons)
        for index, span_reason in enumerate(self._span_reasons(words)):
            if reasons[index] is None:
                reasons[index] = span_reason
        for index, word in enumerate(words):
            if reasons[index] is None:
                reasons[index] = self._word_reason(word.text)
            if reasons[index] in LOOSE_PATTERNS and word.score < LOOSE_PATTERN_MIN_SCORE:
                reasons[index] = None  # texture read as letters, not a reading of text
            if reasons[index] in INITIALS_REASONS and word.text.rstrip().endswith(":"):
                reasons[index] = None  # a label ("Im:" read "lm:"), not a person's initials
        _bare_ages_in_context(words, tokens, reasons)
        _field_values(words, reasons)
        boxes = [w.box for w in words]
        self._cut_values(tokens, reasons, boxes, [w.text.strip() for w in words])
        # Words of one value ("2018 Mar 07") or pattern are hidden as one block: a character
        # the OCR dropped between them ("Mar 7") lies in the gap, and the descender of one
        # ("J" of "Jul") reaches under the others (each keeps its own top: a block of the
        # value's full height would blacken more around words of small letters).
        for run in _value_runs(reasons):
            foot = max(boxes[i][3] for i in run)
            for i in run:
                right = max(boxes[i][2], boxes[i + 1][0] - 1) if i + 1 in run else boxes[i][2]
                boxes[i] = (boxes[i][0], boxes[i][1], right, foot)
        has_phi = any(r not in (None, Reason.SAFE) for r in reasons)
        verdicts = []
        for word, token, reason, box in zip(words, tokens, reasons, boxes, strict=True):
            sex_letter = token in ("M", "F", "O") and token == self.sex
            if reason is Reason.SAFE and has_phi and sex_letter:
                reason = Reason.SEX  # "DOE JOHN M": the patient's sex, not metres
            if reason is None:
                if has_phi and (sex_letter or token not in SAFE_WORDS):
                    reason = Reason.SEX if sex_letter else Reason.SAME_LINE
                else:
                    reason = Reason.SAFE if token in SAFE_WORDS | FIELD_LABELS else Reason.UNMATCHED
            elif reason is Reason.SAFE and has_phi and token in FIELD_LABELS:
                reason = Reason.SAME_LINE
            verdicts.append(WordVerdict(word.text, box,
                                        reason not in (Reason.SAFE, Reason.UNMATCHED), reason,
                                        word.score))
        return verdicts

    def _joined_reasons(self, tokens: list[str], reasons: list[Reason | None]) -> None:
        """Runs of words no value matched alone, matched joined ("2001" "JUL05", "MA" "CUS"):
        the longest run that matches gives every word in it its reason. A word already matched
        joins no run ("JANE" "[F]" is no misread "JANE")."""
        for size in range(JOINED_WORDS, 1, -1):
            for start in range(len(tokens) - size + 1):
                run = range(start, start + size)
                if any(reasons[i] is not None or not tokens[i] for i in run):
                    continue
                reason = self._joined_reason("".join(tokens[i] for i in run))
                if reason is not None:
                    for i in run:
                        reasons[i] = reason

    def _date_fragments(self, words: Sequence[Word], reasons: list[Reason | None]) -> None:
        """A date of the file's read cut short at its line's end ("2013 Sep" of 2013 Sep 11)
        or start ("12.2017" of 03.12.2017; ".2017"), the rest under anatomy or past where the
        detector stopped: up to DATE_FRAGMENT_WORDS words no value matched that begin (at the
        end) or end (at the start) one of its renderings, DATE_FRAGMENT_CHARS characters at
        least or a year led by its separator. They are the date, and the strip beyond that end
        is read for the rest."""
        count = len(words)
        for size in range(min(DATE_FRAGMENT_WORDS, count), 0, -1):
            for run, at_end in ((range(count - size, count), True), (range(size), False)):
                if any(reasons[i] is not None for i in run):
                    continue
                raw = "".join(words[i].text for i in run).strip()
                piece = normalise(raw)
                long_enough = len(piece) >= DATE_FRAGMENT_CHARS or (
                    not at_end and DATE_YEAR_TAIL.match(raw) is not None)
                if long_enough and any(
                        form != piece and (form.startswith(piece) if at_end
                                           else form.endswith(piece))
                        for form in self.date_forms):
                    for i in run:
                        reasons[i] = Reason.DATE

    def _value_neighbours(self, tokens: list[str], reasons: list[Reason | None]) -> None:
        """A word of a name or place value that is safe alone ("CENTER") next to a word matched
        to that kind of value is part of it."""
        changed = True
        while changed:
            changed = False
            for i, token in enumerate(tokens):
                if reasons[i] is not None:
                    continue
                for j in (i - 1, i + 1):
                    kind = reasons[j] if 0 <= j < len(tokens) else None
                    if kind in self.value_words and as_letters(token) in self.value_words[kind]:
                        reasons[i], changed = kind, True
                        break

    def _cut_values(self, tokens: list[str], reasons: list[Reason | None], boxes: list[Box],
                    texts: list[str]) -> None:
        """A name or place word read cut short at the start or end of its line (the rest under
        anatomy, or off the frame; "ELINA" of "CELINA" matches the name already) is PHI, its
        box grown by the characters missing on that side. A piece of four letters or more
        stands alone; a shorter one, or one that is a safe word too, needs a word of the same
        kind beside it ("THOMPSON MA"). A date or ID read without its first or last characters
        grows by them on that side too, and so does a line's last value when it is the year of
        a date written year first (`texts`, as read, give the characters' pitch: "DOB:1950")."""
        last = len(tokens) - 1
        for i, token in enumerate(tokens):
            before, after = self._cut_number(token, reasons[i]) if token else (0, 0)
            if i == last and reasons[i] not in (None, Reason.SAFE):
                after = max(after, self._cut_year(token))
            if before or after:  # "08.16.194" of 08.16.1948, "034988626" of 6034988626
                x1, y1, x2, y2 = boxes[i]
                width = (x2 - x1 + 1) / max(len(token), len(texts[i]))
                boxes[i] = (max(0, x1 - math.ceil(before * width)), y1,
                            x2 + math.ceil(after * width), y2)
        for i in sorted({0, last}):
            cut = self._cut_value(tokens[i]) if reasons[i] in CUT_CANDIDATES else None
            if cut is None:
                continue
            kind, before, after = cut
            if reasons[i] in (Reason.NAME, Reason.PLACE) and reasons[i] is not kind:
                continue  # one kind of value, and a piece of the other kind
            inward = reasons[i + 1] if i == 0 and last > 0 else reasons[i - 1] if i else None
            short = len(as_letters(tokens[i])) < 4 or reasons[i] is Reason.SAFE
            if short and inward is not kind:
                continue
            x1, y1, x2, y2 = boxes[i]
            width = (x2 - x1 + 1) / len(tokens[i])
            grow_left = before if i == 0 else 0
            grow_right = after if i == last else 0
            boxes[i] = (max(0, x1 - math.ceil(grow_left * width)), y1,
                        x2 + math.ceil(grow_right * width), y2)
            reasons[i] = kind

    def _word_reason(self, text: str) -> Reason | None:
        if SEX_MARKER.match(text.strip()):
            return Reason.SEX
        token = normalise(text)
        if token in SAFE_WORDS | FIELD_LABELS or MAMMOGRAPHY_VIEW.match(token):
            return Reason.SAFE
        parameter = PARAMETER.match(text.strip(" .,;"))
        label = parameter.group(1).upper() if parameter else ""
        if label in SAFE_WORDS and label not in FIELD_LABELS:  # "DOB:1950" is a value
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
        # The same text with look-alike digits read as letters in mostly-letter words ("5ep"),
        # and accents a misread put on a letter dropped ("5ép"): same length, so spans fall on
        # the same words.
        letters = " ".join(as_letters(_unaccented(word.text)) for word in words) + " "
        spans: list[tuple[int, int, Reason]] = []
        for pattern in PHI_PATTERNS:
            spans += [(*m.span(), Reason.TEXT_PATTERN) for m in pattern.finditer(text)]
        for pattern in LOOSE_DATE_PATTERNS:
            spans += [(*m.span(), Reason.TEXT_PATTERN) for source in (text, letters)
                      for m in pattern.finditer(source)]
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
