"""Validation of de-identified output: the MIDI-B checks and their reports."""
