"""Burned-in text in pixel data: reading views, text detection and recognition.

`views` turns one decoded frame (as pydicom's ``pixel_array`` gives it) into the few 8-bit
images on which burned-in text is legible whatever the data: a local-contrast (equalised) view
always, the full range (read, not searched), and the stored (or a robust) window and a view
keyed to the pixel extremes only when the frame calls for them. MONOCHROME1 is inverted for
reading; PALETTE COLOR and YBR are converted to colour. `frames_to_read` gives the distinct
frames of a multi-frame image (identical frames are read once).

`ocr` reads the views with the PP-OCR ONNX models that ship inside the rapidocr wheel
(onnxruntime; CUDA when available): it detects text lines in the views searched, merges the
lines found in several views, recognises each line once and splits it into words, and fits the
line and word boxes to their ink, all in the frame's pixel coordinates. No model is ever
downloaded.

`phi` judges each word, `redact` fills boxes, `zones` holds fixed per-device regions (from the
policy), and `stage` runs the whole for one file. Plain library: no Dagster import.
"""
