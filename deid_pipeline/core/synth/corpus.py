"""Write a synthetic corpus: DICOM files laid out like a site export, a ground-truth sidecar per
file, and the MIDI-B answer key."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deid_pipeline.core.synth.answer_key import write_answer_key
from deid_pipeline.core.synth.catalog import plan_corpus
from deid_pipeline.core.synth.facts import InstanceFacts
from deid_pipeline.core.synth.identities import ascii_fold
from deid_pipeline.core.synth.iod import build_instance
from deid_pipeline.core.synth.plan import CorpusPlan, InstancePlan, SeriesPlan, StudyPlan
from deid_pipeline.core.synth.rendering import RenderedImage, render_image

ANSWER_KEY_NAME = "answer_key.db"
FOLDER_DESCRIPTION_LENGTH = 40


@dataclass(frozen=True)
class CorpusSummary:
    root: Path
    files: int  # DICOM files
    slides: int  # Aperio SVS slides
    patients: int
    studies: int
    series: int
    answer_key: Path
    files_with_text: int  # any burned-in text, annotations included
    files_with_burned_phi: int
    checks: Mapping[str, int]  # answer-key checks per action


def generate_corpus(out: Path, patients: int = 12, seed: int = 0) -> CorpusSummary:
    """Generate the corpus under `out`; the same arguments give byte-identical files."""
    out = Path(out)
    plan = plan_corpus(patients, seed)
    instances: list[InstanceFacts] = []
    files_with_text = 0
    for study in plan.studies:
        for series in study.series:
            for instance in series.instances:
                image = render_image(study, series, instance)
                built = build_instance(study, series, instance, image)
                path = out / instance_path(study, series, instance)
                path.parent.mkdir(parents=True, exist_ok=True)
                built.dataset.save_as(path, enforce_file_format=True)
                path.with_suffix(".json").write_text(_sidecar(path.name, series, image))
                instances.append(built.facts)
                files_with_text += bool(image.lines)
    slides = write_slides(out, plan, seed)
    answer_key = out / ANSWER_KEY_NAME
    checks = write_answer_key(answer_key, instances)
    return CorpusSummary(
        root=out,
        files=len(instances),
        slides=slides,
        patients=patients,
        studies=len(plan.studies),
        series=sum(len(study.series) for study in plan.studies),
        answer_key=answer_key,
        files_with_text=files_with_text,
        files_with_burned_phi=sum(bool(facts.burned_phi) for facts in instances),
        checks=dict(sorted(checks.items())),
    )


SLIDE_SIZE = (1536, 1024)  # small: the corpus tests slides' handling, not their scale


def write_slides(out: Path, plan: CorpusPlan, seed: int) -> int:
    """An Aperio slide for each of the first two patients' first study, one linked to its
    patient by a PatientID key and one not, beside the DICOM files."""
    from deid_pipeline.core.slides.synth import write_synthetic_slide

    first_studies = list({s.patient.patient_id: s for s in reversed(plan.studies)}.values())
    written = 0
    for index, study in enumerate(sorted(first_studies, key=lambda s: s.patient.patient_id)[:2]):
        patient = study.patient
        slide_id = f"SL{seed:02d}-{index:04d}"
        path = out / patient.patient_id / "slides" / f"{slide_id}.svs"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_synthetic_slide(path, seed=seed * 100 + index,
                              patient_name=ascii_fold(patient.person.dicom_name),  # TIFF text is ASCII
                              slide_id=slide_id, date=study.started, width=SLIDE_SIZE[0],
                              height=SLIDE_SIZE[1],
                              patient_id=patient.patient_id if index == 0 else None)
        written += 1
    return written


def instance_path(study: StudyPlan, series: SeriesPlan, instance: InstancePlan) -> Path:
    """<PatientID>/<StudyDate>-<description>/<SeriesNumber>-<Modality>/<InstanceNumber>.dcm, the
    way site exports name things (identifiers in the path included)."""
    description = re.sub(r"[^A-Za-z0-9]+", "_", ascii_fold(str(study.description))).strip("_")
    study_folder = f"{study.started:%Y%m%d}-{description[:FOLDER_DESCRIPTION_LENGTH]}"
    series_folder = f"{series.template.number}-{series.template.modality}"
    return Path(study.patient.patient_id, study_folder, series_folder,
                f"{instance.number:04d}.dcm")


def _sidecar(filename: str, series: SeriesPlan, image: RenderedImage) -> str:
    words = [
        {"text": word.text, "bbox": list(word.bbox), "frames": "all", "is_phi": word.is_phi,
         "category": word.category}
        for line in image.lines for word in line.words
    ]
    spec = series.pixels
    return json.dumps({"filename": filename, "rows": spec.rows, "columns": spec.columns,
                       "frames": spec.frames, "words": words}, indent=1) + "\n"
