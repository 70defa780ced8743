"""What the corpus builder planted in each file: the facts the answer key is made of.

The dataset builder records every element it writes together with the element's role for a
de-identifier; the answer key turns roles into MIDI-B checks. Both sides share these records, so
the key never has to read the written files back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(Enum):
    """What a de-identifier must do with an element, as far as the answer key can check it."""

    UID = "uid"  # a study/series/instance/frame-of-reference UID: replaced, consistently
    PATIENT_ID = "patient_id"  # pseudonymised consistently, never emptied
    PSEUDONYM = "pseudonym"  # identifying and must stay non-empty: replaced, not blanked
    IDENTIFYING = "identifying"  # names, IDs, addresses, phones, institutions: removed or replaced
    DATE = "date"  # DA, DT and time stamps: shifted or removed
    FREE_TEXT = "free_text"  # clinical words to keep with identifying spans mixed in
    REQUIRED = "required"  # must keep a non-empty value (Modality)
    RETAINED = "retained"  # pixel description and acquisition parameters
    # Written for realism (times, sex, age, codes, the harmless private block); policies differ on
    # them, so the key asks nothing.
    UNCHECKED = "unchecked"


class SpanKind(Enum):
    CLINICAL = "clinical"  # words that must survive de-identification
    PHI = "phi"  # words that must be gone
    FILLER = "filler"  # joining words ("seen by Dr.", "on"): neither checked nor required


@dataclass(frozen=True)
class Span:
    text: str
    kind: SpanKind


@dataclass(frozen=True)
class FreeText:
    """A free-text value built from spans whose kinds are known."""

    spans: tuple[Span, ...]

    def __str__(self) -> str:
        return "".join(span.text for span in self.spans)

    def texts(self, kind: SpanKind) -> tuple[str, ...]:
        return tuple(span.text.strip() for span in self.spans if span.kind is kind)


@dataclass(frozen=True)
class ItemStep:
    """One step into a sequence: the sequence's tag and the item's index."""

    sequence_tag: int
    index: int


@dataclass(frozen=True)
class ElementFact:
    path: tuple[ItemStep, ...]  # enclosing sequence items, outermost first
    tag: int
    name: str  # keyword, or a descriptive name for a private element
    value: str  # the value as DICOM writes it (multiple values joined by a backslash)
    role: Role
    private_creator: str | None = None
    free_text: FreeText | None = None


@dataclass(frozen=True)
class BurnedLine:
    """A line of burned-in text carrying PHI: what OCR must no longer read in that box."""

    text: str
    top_left: tuple[int, int]  # (x, y), inclusive
    bottom_right: tuple[int, int]  # (x, y), inclusive


@dataclass(frozen=True)
class InstanceFacts:
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    sop_class_uid: str
    patient_id: str
    elements: tuple[ElementFact, ...]
    pixel_data_md5: str  # of the Pixel Data bytes as written
    burned_phi: tuple[BurnedLine, ...]
