"""The corpus plan: which studies, series and instances exist, decided before any file is built.

Everything a file refers to (another study's UID, the source series of a reconstruction, the staff
of its institution) is fixed here first, so cross-references always point at real objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from pydicom.dataset import Dataset

from deid_pipeline.core.synth.facts import FreeText
from deid_pipeline.core.synth.identities import Institution, Patient, StaffMember

COLOUR = ("RGB", "YBR_FULL")


@dataclass(frozen=True)
class PixelSpec:
    """The Image Pixel description of a series, as the generator produces the pixels."""

    rows: int
    columns: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    signed: bool = False
    frames: int = 1

    @property
    def samples(self) -> int:
        return 3 if self.photometric in COLOUR else 1

    @property
    def shape(self) -> tuple[int, ...]:
        """pydicom's pixel_array shape for this description."""
        return (*((self.frames,) if self.frames > 1 else ()), self.rows, self.columns,
                *((self.samples,) if self.samples > 1 else ()))

    @property
    def value_range(self) -> tuple[int, int]:
        if self.signed:
            return -(2 ** (self.bits_stored - 1)), 2 ** (self.bits_stored - 1) - 1
        return 0, 2**self.bits_stored - 1

    def describe(self) -> Dataset:
        """The Image Pixel attributes without Pixel Data (and without a palette's tables)."""
        ds = Dataset()
        ds.SamplesPerPixel = self.samples
        ds.PhotometricInterpretation = self.photometric
        if self.samples > 1:
            ds.PlanarConfiguration = 0
        if self.frames > 1:
            ds.NumberOfFrames = self.frames
        ds.Rows = self.rows
        ds.Columns = self.columns
        ds.BitsAllocated = self.bits_allocated
        ds.BitsStored = self.bits_stored
        ds.HighBit = self.bits_stored - 1
        ds.PixelRepresentation = int(self.signed)
        return ds


class OverlayKind(Enum):
    NONE = "none"  # no burned-in text
    ANNOTATIONS = "annotations"  # only text that must be kept (markers, technique, W/L)
    PHI = "phi"  # identifying text as well as annotations


@dataclass(frozen=True)
class SeriesTemplate:
    """One series of a protocol: the modality, its IOD and how its images look."""

    key: str  # names the series within its protocol, for references between series
    number: int
    modality: str
    sop_class_uid: str
    description: str
    pixels: PixelSpec  # frames here is the lower bound of `frames`
    anatomy: str  # the background generator in pixels.py
    instances: tuple[int, int]  # inclusive range
    manufacturer: str
    model: str
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY")
    frames: tuple[int, int] = (1, 1)
    pixel_spacing_mm: float = 0.7
    slice_thickness_mm: float | None = None
    views: tuple[str, ...] = ()  # per-instance view names, cycled
    laterality: str | None = None  # of a one-sided examination (mammography views carry theirs)
    source_key: str | None = None  # series this one is derived from (Source Image Sequence)
    localizer_key: str | None = None  # series referenced by Referenced Image Sequence
    referenced_series_key: str | None = None  # series a summary screen reports on
    overlay: OverlayKind | None = None  # a fixed overlay kind, else the corpus' rotation
    header_band: bool = False  # a dark band across the top holding the demographics
    window: tuple[int, int] | None = None  # centre and width, in rescaled units
    mr_timing: tuple[float, float] | None = None  # repetition and echo time, ms


@dataclass(frozen=True)
class Protocol:
    """A kind of study: its clinical wording and its series."""

    description: str
    procedure_code: str
    body_part: str
    indication: str
    history: str
    finding: str
    series: tuple[SeriesTemplate, ...]


@dataclass(frozen=True)
class InstancePlan:
    number: int
    sop_instance_uid: str
    acquired: datetime
    view: str | None
    pixel_seed: tuple[int, ...]


@dataclass(frozen=True)
class SeriesPlan:
    template: SeriesTemplate
    series_instance_uid: str
    pixels: PixelSpec
    transfer_syntax: str
    overlay: OverlayKind
    started: datetime
    description: FreeText
    performing: tuple[StaffMember, ...]
    operators: tuple[StaffMember, ...]
    station_name: str
    device_serial_number: str
    performed_step_id: str
    irradiation_event_uid: str | None  # X-ray modalities only
    kvp: int | None  # X-ray technique, where the modality has one
    exposure_mas: int | None
    style_seed: tuple[int, ...]  # the overlay's look, shared by the series' images
    instances: tuple[InstancePlan, ...]


@dataclass(frozen=True)
class StudyPlan:
    patient: Patient
    institution: Institution
    protocol: Protocol
    study_instance_uid: str
    frame_of_reference_uid: str
    started: datetime
    accession_number: str
    study_id: str
    requested_procedure_id: str
    scheduled_step_id: str
    admission_id: str
    referring: StaffMember
    reading: StaffMember
    requesting: StaffMember
    prior_study_uid: str | None
    description: FreeText
    reason: FreeText
    history: FreeText
    patient_comments: FreeText
    image_comments: FreeText
    series: tuple[SeriesPlan, ...]

    def series_by_key(self, key: str) -> SeriesPlan:
        return next(series for series in self.series if series.template.key == key)


@dataclass(frozen=True)
class CorpusPlan:
    seed: int
    patients: int
    studies: tuple[StudyPlan, ...]
