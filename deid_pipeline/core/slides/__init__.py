"""Aperio SVS whole-slide images: synthetic slides, metadata rows, de-identification that copies
tiles as stored, and verification with OpenSlide."""
