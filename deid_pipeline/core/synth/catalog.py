"""The study protocols the corpus draws from, and the plan of a whole corpus.

Coverage is planned, not left to chance: every protocol appears once before any repeats, every
transfer syntax the codecs can write is given to a series whose pixels it accepts, and the kinds
of burned-in text are dealt out to keep their shares of the images steady.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import numpy as np
from pydicom import uid
from pydicom.uid import generate_uid

from deid_pipeline.core.codecs import ENCODABLE_SYNTAXES, encodable
from deid_pipeline.core.synth import free_text
from deid_pipeline.core.synth.identities import IdentityFactory, Institution, Patient
from deid_pipeline.core.synth.plan import (
    CorpusPlan,
    InstancePlan,
    OverlayKind,
    PixelSpec,
    Protocol,
    SeriesPlan,
    SeriesTemplate,
    StudyPlan,
)

GE_CT = ("GE MEDICAL SYSTEMS", "Revolution CT")
GE_MR = ("GE MEDICAL SYSTEMS", "SIGNA Premier")
LOCALIZER = ("ORIGINAL", "PRIMARY", "LOCALIZER")
AXIAL = ("ORIGINAL", "PRIMARY", "AXIAL")
RECONSTRUCTION = ("DERIVED", "SECONDARY", "AXIAL")
SCREEN = ("DERIVED", "SECONDARY", "SCREEN SAVE")
CT_SCOUT = PixelSpec(512, 512, "MONOCHROME2", 16, 12)
CT_SIGNED = PixelSpec(512, 512, "MONOCHROME2", 16, 16, signed=True)
CT_12BIT = PixelSpec(512, 512, "MONOCHROME2", 16, 12)
MR_12BIT = PixelSpec(256, 256, "MONOCHROME2", 16, 12)
MR_16BIT = PixelSpec(256, 256, "MONOCHROME2", 16, 16)
RGB_512 = PixelSpec(512, 512, "RGB", 8, 8)

PROTOCOLS = (
    Protocol(
        "CT CHEST WITH CONTRAST", "CTCHESTC", "CHEST", "follow-up of pulmonary nodule",
        "heavy smoking history", "stable subcentimeter nodule in the right upper lobe",
        (
            SeriesTemplate("scout", 1, "CT", uid.CTImageStorage, "SCOUT", CT_SCOUT, "ct_scout",
                           (1, 1), *GE_CT, image_type=LOCALIZER, pixel_spacing_mm=0.9,
                           views=("AP",), window=(40, 400)),
            SeriesTemplate("axial", 2, "CT", uid.CTImageStorage, "AXIAL 5MM", CT_SIGNED,
                           "ct_chest", (12, 16), *GE_CT, image_type=AXIAL,
                           slice_thickness_mm=5.0, localizer_key="scout", window=(40, 400)),
            SeriesTemplate("lung", 3, "CT", uid.CTImageStorage, "LUNG 1.25MM", CT_12BIT,
                           "ct_chest", (8, 10), *GE_CT, image_type=RECONSTRUCTION,
                           slice_thickness_mm=1.25, source_key="axial", window=(-600, 1500)),
            SeriesTemplate("dose", 999, "SC", uid.SecondaryCaptureImageStorage, "DOSE REPORT",
                           RGB_512, "sc_dose", (1, 1), *GE_CT, image_type=SCREEN,
                           referenced_series_key="axial", overlay=OverlayKind.PHI,
                           header_band=True),
        ),
    ),
    Protocol(
        "MRI BRAIN WITHOUT AND WITH CONTRAST", "MRBRWWO", "HEAD",
        "evaluate for metastatic disease", "history of breast cancer",
        "no acute intracranial abnormality",
        (
            SeriesTemplate("localizer", 1, "MR", uid.MRImageStorage, "3 PLANE LOC", MR_12BIT,
                           "mr_brain_sagittal", (3, 3), *GE_MR, image_type=LOCALIZER,
                           pixel_spacing_mm=1.0, slice_thickness_mm=8.0, window=(700, 1400),
                           mr_timing=(6.0, 1.6)),
            SeriesTemplate("ax_t2", 2, "MR", uid.MRImageStorage, "AX T2 FSE", MR_12BIT,
                           "mr_brain_axial", (10, 14), *GE_MR, image_type=AXIAL,
                           pixel_spacing_mm=0.9, slice_thickness_mm=5.0,
                           localizer_key="localizer", window=(800, 1600),
                           mr_timing=(4500.0, 102.0)),
            SeriesTemplate("sag_t1", 3, "MR", uid.MRImageStorage, "SAG T1 POST", MR_16BIT,
                           "mr_brain_sagittal", (8, 10), *GE_MR, pixel_spacing_mm=0.9,
                           slice_thickness_mm=4.0, localizer_key="localizer",
                           window=(700, 1400), mr_timing=(550.0, 12.0)),
        ),
    ),
    Protocol(
        "XR CHEST 2 VIEWS", "XRCH2V", "CHEST", "shortness of breath",
        "history of congestive heart failure", "mild cardiomegaly without edema",
        (
            SeriesTemplate("pa", 1, "CR", uid.ComputedRadiographyImageStorage, "CHEST PA",
                           PixelSpec(512, 512, "MONOCHROME1", 16, 12), "xr_chest", (1, 1),
                           "FUJIFILM Corporation", "FCR PROFECT CS", views=("PA",),
                           window=(2048, 4096)),
            SeriesTemplate("lat", 2, "CR", uid.ComputedRadiographyImageStorage, "CHEST LAT",
                           PixelSpec(512, 512, "MONOCHROME1", 16, 12), "xr_chest", (1, 1),
                           "FUJIFILM Corporation", "FCR PROFECT CS", views=("LAT",),
                           window=(2048, 4096)),
        ),
    ),
    Protocol(
        "XR HAND 3 VIEWS LEFT", "XRHAND3L", "HAND", "pain after a fall",
        "history of osteoporosis", "no acute fracture or dislocation",
        (
            SeriesTemplate("hand", 1, "DX", uid.DigitalXRayImageStorageForPresentation,
                           "HAND LEFT", PixelSpec(384, 311, "MONOCHROME2", 16, 16), "xr_hand",
                           (2, 3), "Carestream Health", "DRX-Evolution", pixel_spacing_mm=0.15,
                           views=("PA", "OBL", "LAT"), laterality="L", window=(30000, 60000)),
            SeriesTemplate("soft", 2, "DX", uid.DigitalXRayImageStorageForPresentation,
                           "HAND SOFT TISSUE", PixelSpec(384, 311, "MONOCHROME1", 16, 16),
                           "xr_hand", (1, 1), "Carestream Health", "DRX-Evolution",
                           image_type=("DERIVED", "PRIMARY"), pixel_spacing_mm=0.15,
                           views=("PA",), laterality="L", source_key="hand",
                           window=(30000, 60000)),
        ),
    ),
    Protocol(
        "US ABDOMEN COMPLETE", "USABDC", "ABDOMEN", "right upper quadrant pain",
        "history of gallstones", "cholelithiasis without cholecystitis",
        (
            SeriesTemplate("abdomen", 1, "US", uid.UltrasoundImageStorage, "ABDOMEN", RGB_512,
                           "us_abdomen", (3, 6), "Philips Medical Systems", "EPIQ 7",
                           pixel_spacing_mm=0.2, header_band=True),
            SeriesTemplate("doppler", 2, "US", uid.UltrasoundImageStorage, "COLOR DOPPLER",
                           PixelSpec(512, 512, "PALETTE COLOR", 8, 8), "us_doppler", (1, 2),
                           "Philips Medical Systems", "EPIQ 7", pixel_spacing_mm=0.2,
                           header_band=True),
            SeriesTemplate("cine", 3, "US", uid.UltrasoundMultiFrameImageStorage, "CINE",
                           PixelSpec(256, 256, "YBR_FULL", 8, 8, frames=8), "us_abdomen",
                           (1, 2), "Philips Medical Systems", "EPIQ 7", frames=(8, 10),
                           pixel_spacing_mm=0.4, header_band=True),
        ),
    ),
    Protocol(
        "XA CORONARY ANGIOGRAPHY", "XACOR", "HEART", "chest pain with a positive stress test",
        "history of hypertension", "severe stenosis of the proximal left anterior descending",
        (
            SeriesTemplate("lca", 1, "XA", uid.XRayAngiographicImageStorage, "LEFT CORONARY",
                           PixelSpec(512, 512, "MONOCHROME2", 8, 8, frames=8), "xa_coronary",
                           (1, 2), "Siemens Healthineers", "AXIOM-Artis", frames=(8, 12),
                           pixel_spacing_mm=0.3, window=(128, 256)),
            SeriesTemplate("rca", 2, "XA", uid.XRayAngiographicImageStorage, "RIGHT CORONARY",
                           PixelSpec(512, 512, "MONOCHROME2", 8, 8, frames=8), "xa_coronary",
                           (1, 1), "Siemens Healthineers", "AXIOM-Artis", frames=(8, 12),
                           pixel_spacing_mm=0.3, window=(128, 256)),
        ),
    ),
    Protocol(
        "MG SCREENING BILATERAL", "MGSCRB", "BREAST", "routine screening",
        "family history of breast cancer", "negative, no suspicious findings",
        (
            SeriesTemplate("screening", 1, "MG",
                           uid.DigitalMammographyXRayImageStorageForPresentation, "SCREENING",
                           PixelSpec(512, 512, "MONOCHROME2", 16, 12), "mammo", (4, 4),
                           "HOLOGIC, Inc.", "Selenia Dimensions", pixel_spacing_mm=0.1,
                           views=("RCC", "LCC", "RMLO", "LMLO"), window=(1500, 3000)),
            SeriesTemplate("spot", 2, "MG",
                           uid.DigitalMammographyXRayImageStorageForPresentation, "SPOT COMPRESSION",
                           PixelSpec(512, 512, "MONOCHROME1", 16, 12), "mammo", (1, 1),
                           "HOLOGIC, Inc.", "Selenia Dimensions", pixel_spacing_mm=0.1,
                           views=("LCC",), window=(1500, 3000)),
        ),
    ),
    Protocol(
        "CTA ABDOMEN 3D RECONSTRUCTION", "CTA3DABD", "ABDOMEN",
        "evaluate abdominal aortic aneurysm", "known abdominal aortic aneurysm",
        "large infrarenal aneurysm without rupture",
        (
            SeriesTemplate("render", 1, "SC", uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
                           "VOLUME RENDERING", PixelSpec(256, 256, "RGB", 8, 8, frames=6),
                           "sc_render", (1, 2), "TeraRecon", "Intuition", image_type=SCREEN,
                           frames=(6, 8), pixel_spacing_mm=1.2),
            SeriesTemplate("document", 2, "SC", uid.SecondaryCaptureImageStorage,
                           "SCANNED REQUISITION", PixelSpec(257, 301, "MONOCHROME2", 8, 8),
                           "sc_document", (1, 1), "Fujitsu", "fi-7160",
                           image_type=("DERIVED", "SECONDARY"), pixel_spacing_mm=0.5,
                           overlay=OverlayKind.PHI),
        ),
    ),
)
INSTITUTIONS = 3
MAX_STUDIES_PER_PATIENT = 3
NON_ASCII_EVERY = 5  # the patients at index 2, 7, 12 ... carry non-ASCII names
NON_ASCII_OFFSET = 2
FIRST_STUDY_DAY = date(2008, 1, 1)
LAST_STUDY_DAY = date(2024, 12, 31)
# kVp and mAs ranges of the X-ray modalities.
TECHNIQUE = {"CT": ((100, 140), (150, 350)), "CR": ((110, 125), (2, 6)), "DX": ((52, 60), (2, 5)),
             "MG": ((26, 32), (60, 160)), "XA": ((70, 95), (8, 20))}
# Share of the images given each kind of burned-in text.
OVERLAY_SHARES = {OverlayKind.PHI: 0.5, OverlayKind.NONE: 0.25, OverlayKind.ANNOTATIONS: 0.25}


def corpus_uid(seed: int, *parts: object) -> str:
    """A UID derived from the seed and the object's place in the corpus only."""
    return generate_uid(entropy_srcs=[f"deid-synth/{seed}", *map(str, parts)])


def plan_corpus(patients: int, seed: int) -> CorpusPlan:
    if patients < 1:
        raise ValueError("a corpus needs at least one patient")
    rng = np.random.default_rng(seed)
    people = IdentityFactory(seed)
    institutions = tuple(people.institution() for _ in range(INSTITUTIONS))
    counts = _study_counts(rng, patients)
    protocols = _protocol_rotation(rng, sum(counts))
    shapes = [
        [(_series_pixels(template, rng), _instance_count(template, rng))
         for template in protocol.series]
        for protocol in protocols
    ]
    syntaxes = iter(assign_syntaxes([spec for study in shapes for spec, _ in study], rng))
    overlays = iter(assign_overlays(
        [(template, count) for protocol, study in zip(protocols, shapes)
         for template, (_, count) in zip(protocol.series, study)]
    ))

    studies: list[StudyPlan] = []
    for patient_index, count in enumerate(counts):
        patient = people.patient(non_ascii=patient_index % NON_ASCII_EVERY == NON_ASCII_OFFSET)
        institution = institutions[rng.integers(len(institutions))]
        day = _first_study_day(rng, patient)
        prior: StudyPlan | None = None
        for _ in range(count):
            index = len(studies)
            study = _plan_study(seed, index, rng, patient, institution, protocols[index],
                                shapes[index], syntaxes, overlays, day, prior)
            studies.append(study)
            prior = study
            day = min(day + timedelta(days=int(rng.integers(30, 700))), LAST_STUDY_DAY)
    return CorpusPlan(seed=seed, patients=patients, studies=tuple(studies))


def assign_syntaxes(specs: list[PixelSpec], rng: np.random.Generator) -> list[str]:
    """A transfer syntax per series: each encodable syntax at least once where some series
    accepts it (the pickiest syntaxes choose first), the rest drawn among the accepted ones."""
    syntaxes = sorted(ENCODABLE_SYNTAXES)  # a frozenset: sorted for a stable order
    described = [spec.describe() for spec in specs]
    accepted = {
        syntax: [i for i, ds in enumerate(described) if encodable(ds, syntax) is None]
        for syntax in syntaxes
    }
    chosen: dict[int, str] = {}
    for syntax in sorted(syntaxes, key=lambda syntax: (len(accepted[syntax]), syntax)):
        free = [i for i in accepted[syntax] if i not in chosen]
        if free:
            chosen[free[rng.integers(len(free))]] = syntax
    for i in range(len(specs)):
        if i not in chosen:
            options = [syntax for syntax in syntaxes if i in accepted[syntax]]
            chosen[i] = options[rng.integers(len(options))]
    return [chosen[i] for i in range(len(specs))]


def _study_counts(rng: np.random.Generator, patients: int) -> list[int]:
    """1-3 studies per patient, dealt in shuffled rounds (two per patient on average, whatever
    the seed), topped up until every protocol fits in the corpus."""
    counts: list[int] = []
    while len(counts) < patients:
        counts.extend(int(count) + 1 for count in rng.permutation(MAX_STUDIES_PER_PATIENT))
    counts = counts[:patients]
    while sum(counts) < len(PROTOCOLS) and min(counts) < MAX_STUDIES_PER_PATIENT:
        counts[counts.index(min(counts))] += 1
    return counts


def _protocol_rotation(rng: np.random.Generator, studies: int) -> list[Protocol]:
    """Protocols in shuffled rounds: all of them appear before any appears twice."""
    order: list[Protocol] = []
    while len(order) < studies:
        order.extend(PROTOCOLS[i] for i in rng.permutation(len(PROTOCOLS)))
    return order[:studies]


def assign_overlays(series: list[tuple[SeriesTemplate, int]]) -> list[OverlayKind]:
    """An overlay kind per series (template and image count), keeping the share of images of
    each kind near OVERLAY_SHARES as the corpus grows; templates with a fixed kind keep it."""
    images = dict.fromkeys(OVERLAY_SHARES, 0)
    kinds: dict[int, OverlayKind] = {}
    # Fixed kinds first, then the largest series first: small ones even out what large ones leave.
    order = sorted(range(len(series)),
                   key=lambda i: (series[i][0].overlay is None, -series[i][1], i))
    for index in order:
        template, count = series[index]
        total = sum(images.values()) + count

        def miss(choice: OverlayKind) -> float:
            """How far the shares would be from their targets with this series given `choice`."""
            return sum(abs(images[kind] + count * (kind is choice) - share * total)
                       for kind, share in OVERLAY_SHARES.items())

        kind = template.overlay or min(OVERLAY_SHARES, key=miss)
        images[kind] += count
        kinds[index] = kind
    return [kinds[index] for index in range(len(series))]


def _instance_count(template: SeriesTemplate, rng: np.random.Generator) -> int:
    return int(rng.integers(template.instances[0], template.instances[1] + 1))


def _series_pixels(template: SeriesTemplate, rng: np.random.Generator) -> PixelSpec:
    low, high = template.frames
    if high == 1:
        return template.pixels
    return replace(template.pixels, frames=int(rng.integers(low, high + 1)))


def _technique(modality: str, rng: np.random.Generator) -> dict[str, int | None]:
    if modality not in TECHNIQUE:
        return {"kvp": None, "exposure_mas": None}
    (kvp_low, kvp_high), (mas_low, mas_high) = TECHNIQUE[modality]
    return {"kvp": int(rng.integers(kvp_low, kvp_high + 1)),
            "exposure_mas": int(rng.integers(mas_low, mas_high + 1))}


def _first_study_day(rng: np.random.Generator, patient: Patient) -> date:
    earliest = max(FIRST_STUDY_DAY, patient.birth_date + timedelta(days=365))
    latest = LAST_STUDY_DAY - timedelta(days=3 * 365)
    return earliest + timedelta(days=int(rng.integers(max(1, (latest - earliest).days))))


def _plan_study(seed: int, index: int, rng: np.random.Generator, patient: Patient,
                institution: Institution, protocol: Protocol,
                shapes: list[tuple[PixelSpec, int]],
                syntaxes: Iterator[str], overlays: Iterator[OverlayKind], day: date,
                prior: StudyPlan | None) -> StudyPlan:
    started = datetime.combine(day, time(7)) + timedelta(minutes=int(rng.integers(0, 12 * 60)))
    referring, reading, requesting, *series_staff = (
        institution.staff[i] for i in rng.permutation(len(institution.staff))
    )
    prior_day = prior.started.date() if prior else day - timedelta(days=int(rng.integers(60, 900)))
    series: list[SeriesPlan] = []
    series_start = started
    for series_index, (template, (spec, count)) in enumerate(zip(protocol.series, shapes)):
        instances = tuple(
            InstancePlan(
                number=number,
                sop_instance_uid=corpus_uid(seed, "instance", index, series_index, number),
                acquired=series_start + timedelta(seconds=int(number * rng.integers(4, 30))),
                view=template.views[(number - 1) % len(template.views)] if template.views else None,
                pixel_seed=(seed, index, series_index, number),
            )
            for number in range(1, count + 1)
        )
        staff = [series_staff[i] for i in rng.permutation(len(series_staff))]
        performing_count, operator_count = (int(n) for n in rng.integers(1, 3, 2))
        series.append(SeriesPlan(
            template=template,
            series_instance_uid=corpus_uid(seed, "series", index, series_index),
            pixels=spec,
            transfer_syntax=next(syntaxes),
            overlay=next(overlays),
            started=series_start,
            description=free_text.series_description(template.description, day, rng),
            performing=tuple(staff[:performing_count]),
            operators=tuple(staff[performing_count:performing_count + operator_count]),
            station_name=f"{institution.code}{template.modality}{rng.integers(1, 10):02d}",
            device_serial_number=str(rng.integers(10**5, 10**9)),
            performed_step_id=f"PPS{rng.integers(10**5, 10**6)}",
            irradiation_event_uid=corpus_uid(seed, "irradiation", index, series_index)
            if template.modality in TECHNIQUE else None,
            **_technique(template.modality, rng),
            style_seed=(seed, index, series_index),
            instances=instances,
        ))
        series_start += timedelta(minutes=int(rng.integers(2, 15)))
    return StudyPlan(
        patient=patient,
        institution=institution,
        protocol=protocol,
        study_instance_uid=corpus_uid(seed, "study", index),
        frame_of_reference_uid=corpus_uid(seed, "frame-of-reference", index),
        started=started,
        accession_number=f"A{rng.integers(10**7, 10**8)}",
        study_id=str(rng.integers(1000, 100000)),
        requested_procedure_id=f"RP{rng.integers(10**5, 10**6)}",
        scheduled_step_id=f"SPS{rng.integers(10**5, 10**6)}",
        admission_id=f"ADM{rng.integers(10**6, 10**7)}",
        referring=referring,
        reading=reading,
        requesting=requesting,
        prior_study_uid=prior.study_instance_uid if prior else None,
        description=free_text.study_description(protocol.description, patient, rng),
        reason=free_text.reason_for_request(protocol.indication, referring.person, rng),
        history=free_text.additional_history(protocol.history, patient, prior_day, rng),
        patient_comments=free_text.patient_comments(patient, rng),
        image_comments=free_text.image_comments(protocol.finding, reading.person,
                                                day + timedelta(days=int(rng.integers(0, 3))),
                                                rng),
        series=tuple(series),
    )
