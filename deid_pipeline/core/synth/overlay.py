"""What a device burns into an image and where: demographics, staff initials and the technique
annotations that must survive de-identification.

The look (font, size, ink, corners) is drawn from the series' own seed, so all images of a
series carry their text alike, as a modality's would; the content follows each image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

from deid_pipeline.core.synth.burn_in import (
    FONTS,
    MAX_TEXT_HEIGHT,
    MIN_TEXT_HEIGHT,
    Corner,
    Ink,
    TextBlock,
    TextLine,
    TextStyle,
    Word,
)
from deid_pipeline.core.synth.identities import ascii_fold
from deid_pipeline.core.synth.plan import InstancePlan, OverlayKind, SeriesPlan, StudyPlan

# Month names spelled here: strftime's %b follows the machine's locale.
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DATE_FORMATS: tuple[Callable[[date], str], ...] = (
    lambda day: f"{day.month:02d}.{day.day:02d}.{day.year}",  # 01.03.2012, as in MIDI-B
    lambda day: f"{day.day:02d}/{day.month:02d}/{day.year}",  # 03/01/2012
    lambda day: day.isoformat(),  # 2012-01-03
    lambda day: f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year}",  # 03-JAN-2012
    lambda day: f"{day.year} {MONTHS[day.month - 1].title()} {day.day:02d}",  # 2012 Jan 03
    lambda day: f"{day.year}{day.month:02d}{day.day:02d}",  # 20120103
)
CORNERS = (Corner.TOP_LEFT, Corner.TOP_RIGHT, Corner.BOTTOM_LEFT, Corner.BOTTOM_RIGHT)
MONOCHROME_INKS = ((Ink.MAXIMUM, 0.5), (Ink.MINIMUM, 0.2), (Ink.LOW_CONTRAST, 0.3))
COLOUR_INKS = ((Ink.WHITE, 0.45), (Ink.YELLOW, 0.3), (Ink.LOW_CONTRAST, 0.25))
SCALE_BAR_CM = (5, 2, 1)  # scale bar lengths, longest first
MARKER_SIZE = 1.6  # side markers (L/R) are drawn larger than the other text


@dataclass(frozen=True)
class Overlay:
    style: TextStyle
    blocks: tuple[TextBlock, ...]


def compose_overlay(study: StudyPlan, series: SeriesPlan,
                    instance: InstancePlan) -> Overlay | None:
    if series.overlay is OverlayKind.NONE:
        return None
    rng = np.random.default_rng(series.style_seed)
    style = _style(series, rng)
    corners = [CORNERS[i] for i in rng.permutation(len(CORNERS))]
    demographics_corner = Corner.HEADER if series.template.header_band else corners[0]
    # Annotations go to the other half of the image from the demographics.
    annotation_corner = next(c for c in corners[1:] if _half(c) != _half(demographics_corner))
    initials_corner = next(c for c in corners[1:] if c is not annotation_corner)
    blocks = []
    if series.overlay is OverlayKind.PHI:
        blocks.append(_demographics(study, series, demographics_corner, rng))
        if rng.random() < 0.6:
            blocks.append(_initials(series, initials_corner, rng))
    template = series.template
    annotations = _annotations(series, instance)
    if template.modality == "CR" and rng.random() < 0.4:  # bedside films are labelled so
        annotations += (TextLine(_words("PORTABLE", "annotation", False)),)
    if annotations:
        blocks.append(TextBlock(annotations, annotation_corner))
    marker = _side_marker(series, instance, rng)
    if marker is not None:
        blocks.append(marker)
    return Overlay(style, tuple(blocks))


def _half(corner: Corner) -> str:
    return "bottom" if corner.value.startswith("bottom") else "top"


def _style(series: SeriesPlan, rng: np.random.Generator) -> TextStyle:
    spec = series.pixels
    tallest = min(MAX_TEXT_HEIGHT, max(MIN_TEXT_HEIGHT + 2, min(spec.rows, spec.columns) // 17))
    height = int(rng.integers(MIN_TEXT_HEIGHT, tallest + 1))
    inks = MONOCHROME_INKS if spec.samples == 1 and spec.photometric != "PALETTE COLOR" \
        else COLOUR_INKS
    ink = inks[rng.choice(len(inks), p=[weight for _, weight in inks])][0]
    return TextStyle(
        font=FONTS[rng.integers(len(FONTS))],
        height=height,
        thickness=1 if height < 13 else int(rng.integers(1, 3)),
        antialiased=bool(rng.random() < 0.5),
        ink=ink,
    )


def _words(text: str, category: str, is_phi: bool = True) -> tuple[Word, ...]:
    return tuple(Word(part, category, is_phi) for part in ascii_fold(text).split())


def _demographics(study: StudyPlan, series: SeriesPlan, corner: Corner,
                  rng: np.random.Generator) -> TextBlock:
    """LASTNAME FIRSTNAME [F] 01.03.2012 over DOB: 12.15.1986, and sometimes more."""
    patient = study.patient
    study_date = DATE_FORMATS[rng.integers(len(DATE_FORMATS))](study.started.date())
    birth_date = DATE_FORMATS[rng.integers(len(DATE_FORMATS))](patient.birth_date)
    name = (*_words(patient.burned_name, "patient_name"), Word(f"[{patient.sex}]", "sex", True))
    if corner is Corner.HEADER:
        # one line across the band, as ultrasound and screen captures print it
        line = (*name, Word("ID:", "label", False), *_words(patient.patient_id, "patient_id"),
                *_words(study_date, "date"))
        return TextBlock((TextLine(line),), corner)
    lines = [
        TextLine((*name, *_words(study_date, "date"))),
        TextLine((Word("DOB:", "label", False), *_words(birth_date, "birth_date"))),
    ]
    if rng.random() < 0.4:
        lines.append(TextLine((Word("ID:", "label", False),
                               *_words(patient.patient_id, "patient_id"))))
    if rng.random() < 0.3:
        lines.append(TextLine((Word("ACC:", "label", False),
                               *_words(study.accession_number, "accession"))))
    if rng.random() < 0.3:
        lines.append(TextLine(_words(study.institution.name, "institution")))
    return TextBlock(tuple(lines), corner)


def _initials(series: SeriesPlan, corner: Corner, rng: np.random.Generator) -> TextBlock:
    """Technologist (and sometimes physician) initials, e.g. JT or JT/ACO."""
    staff = [series.operators[0]] + ([series.performing[0]] if rng.random() < 0.3 else [])
    text = "/".join(member.person.initials for member in staff)
    return TextBlock((TextLine((Word(text, "initials", True),)),), corner)


def _annotations(series: SeriesPlan, instance: InstancePlan) -> tuple[TextLine, ...]:
    """Technique and display text a reader needs; none of it identifies anyone."""
    template = series.template

    def note(text: str) -> TextLine:
        return TextLine(_words(text, "annotation", False))

    lines = []
    if template.modality in ("CT", "MR", "XA", "US") or template.anatomy == "sc_render":
        lines.append(note(f"Se: {template.number} Im: {instance.number}"))
    if series.kvp is not None and template.modality in ("CT", "XA", "MG"):
        lines.append(note(f"{series.kvp} kVp"))
        lines.append(note(f"{series.exposure_mas} mAs"))
    if template.mr_timing is not None:
        repetition, echo = template.mr_timing
        lines.append(note(f"TR:{repetition:g} TE:{echo:g}"))
    if template.window is not None and template.modality in ("CT", "MR", "XA"):
        centre, width = template.window
        lines.append(note(f"W:{width} L:{centre}"))
    if instance.view is not None:
        lines.append(note(instance.view))
    if template.modality in ("CT", "US"):
        # the longest round length that fits in a third of the width
        centimetres = next((cm for cm in SCALE_BAR_CM
                            if cm * 10 / template.pixel_spacing_mm < series.pixels.columns / 3),
                           None)
        if centimetres is not None:
            lines.append(TextLine(scale_bar_px=round(centimetres * 10 / template.pixel_spacing_mm)))
            lines.append(note(f"{centimetres} cm"))
    if template.anatomy == "sc_dose":
        lines.append(note("CTDIvol 12.4 mGy"))
        lines.append(note("DLP 486 mGy*cm"))
    return tuple(lines)


def _side_marker(series: SeriesPlan, instance: InstancePlan,
                 rng: np.random.Generator) -> TextBlock | None:
    """The lead L/R marker of radiographs, at the image's edge."""
    template = series.template
    if template.modality not in ("CR", "DX", "MG"):
        return None
    if template.modality == "MG":
        side = instance.view[0]
    else:
        side = template.laterality or "LR"[rng.integers(2)]
    corner = Corner.MIDDLE_LEFT if rng.random() < 0.5 else Corner.MIDDLE_RIGHT
    return TextBlock((TextLine((Word(side, "annotation", False),)),), corner, MARKER_SIZE)
