"""Synthetic DICOM corpus with planted PHI (tags and burned-in pixels), per-file ground truth and
a MIDI-B answer key, for testing the de-identification pipeline end to end."""

from deid_pipeline.core.synth.corpus import CorpusSummary, generate_corpus

__all__ = ["CorpusSummary", "generate_corpus"]
