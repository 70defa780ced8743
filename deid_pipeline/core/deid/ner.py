"""PHI spans from a token-classification model on local disk (optional; needs the `ner` extra).

The model is never fetched: the path must hold a model and tokenizer saved with
`save_pretrained`, and the hub is switched off before transformers loads.
"""

from __future__ import annotations

import os
from pathlib import Path

from deid_pipeline.core.deid.free_text import Span

# Entity groups that name a person, a place, a date or an identifier in common clinical NER
# label sets (i2b2, CoNLL, OntoNotes).
DEFAULT_PHI_LABELS = frozenset({
    "PER", "PERSON", "NAME", "PATIENT", "DOCTOR", "STAFF", "LOC", "LOCATION", "GPE", "ADDRESS",
    "HOSPITAL", "ORGANIZATION", "DATE", "AGE", "ID", "IDNUM", "MEDICALRECORD", "PHONE", "EMAIL",
    "CONTACT",
})


class NerSpanFinder:
    def __init__(self, model_path: Path, labels: frozenset[str] = DEFAULT_PHI_LABELS,
                 min_score: float = 0.5, device: str = "cpu") -> None:
        model_path = Path(model_path)
        if not (model_path / "config.json").is_file():
            raise FileNotFoundError(f"no token-classification model at {model_path}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import pipeline

        self.labels = {label.upper() for label in labels}
        self.min_score = min_score
        self._pipeline = pipeline("token-classification", model=str(model_path),
                                  tokenizer=str(model_path), aggregation_strategy="simple",
                                  device=device)

    def __call__(self, text: str) -> list[Span]:
        if not text.strip():
            return []
        return [
            (int(entity["start"]), int(entity["end"]))
            for entity in self._pipeline(text)
            if entity["entity_group"].upper() in self.labels and entity["score"] >= self.min_score
        ]
