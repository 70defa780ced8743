"""Burned-in text in pixel data: reading views, text detection and recognition.

`views` turns one decoded frame (as pydicom's ``pixel_array`` gives it) into the few 8-bit
images on which burned-in text is legible whatever the data: full range always; the stored (or a
robust) window, a view keyed to the pixel extremes (burned-in text is usually drawn at the
largest or smallest value) and a local-contrast view only when the frame calls for them.
MONOCHROME1 is inverted for reading; PALETTE COLOR and YBR are converted to colour.
`frames_to_read` gives the distinct frames of a multi-frame image (identical frames are read
once).

`ocr` reads the views with the PP-OCR ONNX models that ship inside the rapidocr wheel
(onnxruntime; CUDA when available): it detects text lines in each view, merges the lines found in
several views, recognises each line once and splits it into words with per-word boxes, all in the
frame's pixel coordinates. No model is ever downloaded.

The rest of the package judges, redacts and writes back on top of these. Plain library: no
Dagster import.
"""
