"""Find and read burned-in text with the PP-OCR ONNX models inside the rapidocr wheel.

`TextReader` runs the PP-OCRv6 small text detector (DB) on the reading views of a frame that
are searched, merges the lines found in several views, recognises each merged line once
(PP-OCRv6 small recogniser, CTC) from a view that saw all of it, and splits it into words with
boxes estimated from the positions at which the recogniser emitted each character.
Line and word boxes are then fitted to the ink they hold (the detector's box is the text grown
by about its height on every side). Boxes are inclusive (x1, y1, x2, y2) in the frame's pixel
coordinates.

Only the model files in the installed wheel are used, through onnxruntime directly: nothing is
downloaded, and no rapidocr code runs (its post-processing is reimplemented here for
axis-aligned medical annotations). The device is a constructor setting: "cpu", "cuda" or "auto"
(CUDA when onnxruntime offers it, else CPU).

Settings, tuned on the burned-in development set with benchmarks/bench_ocr_detection.py (recall
of PHI value boxes against seconds per image):

* Detector scale: frames are read at their own size (padded to a multiple of 32, not resized),
  upscaled only when the short side is under `min_side` (512; at most `max_upscale` 2×: small
  matrices carry 6–9 px fonts) and downscaled when the long side exceeds `max_side` (1600).
  rapidocr's default brings the short side to 736: on the development set that costs about
  twice the detector time for the same recall; 640 costs 1.5× for the same recall too.
* DB post-processing: probability threshold 0.3, box threshold 0.5, unclip ratio 1.6
  (rapidocr's values; lower thresholds merged noisy X-ray texture into lines and lost recall,
  a larger unclip ratio joined neighbouring lines). Boxes are upright (annotations are
  horizontal), trimmed of rows that only something touching the line fills, scored by the mean
  probability inside the region; a region too thick to be a line is thresholded again, higher,
  so that lines joined to a hazy patch of texture come apart from it.
* No angle classifier: burned-in annotations are upright (vertical lines are read turned).
* Recognition: one run per merged line (on CPU a batch costs the same CPU time as its parts,
  measured on the development set's 32 frames; CUDA batches lines of nearly equal width), crops
  resized to the model's 48-pixel height and squeezed to 0.8 of their width (20 % fewer
  columns, the recogniser's cost, for no loss of exact reads on the development set; 0.65 loses
  some). A line is read from a view that saw all of it, not the equalised one where another
  did (equalisation makes confident misreads of busy surroundings); lines read with a score
  under 0.9 are read in the other views too, but for the equalised one. Recognised crops are
  cached by their pixels: a series whose frames carry the same annotation reads it once.
* Threads: as many as the CPUs this process may run on (its affinity: a pod's share, not the
  host's cores), not spinning while idle.
* The detector's denormal weights flushed to zero when it is loaded (`flushed_model`): it costs
  a third of the CPU time, for the same probabilities to the last bit.

Not thread-safe: one reader per thread or process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from pydicom.dataset import Dataset

from deid_pipeline.core.pixels.ink import fit_to_ink
from deid_pipeline.core.pixels.views import View, reading_views
from deid_pipeline.core.workers import available_cpus

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
REC_HEIGHT = 48  # the recogniser's input height
REC_MAX_WIDTH = 48 * 48  # a crop wider than 48 heights is squeezed to this width
# Lines tilted by at most this many degrees are boxed upright.
UPRIGHT_TOLERANCE = 10.0
# Rows at the top or bottom of a line's region filled across less than this share of its
# fullest row are something touching the line, not the line.
LINE_ROW_FILL = 0.3
# DB regions thicker than this (detector pixels) are re-thresholded, up to the top threshold.
LINE_MAX_THICKNESS, DB_TOP_THRESHOLD = 48, 0.9
# A "line" taller than both of these (pixels; share of the frame's rows) is a textured region.
REGION_HEIGHT, REGION_FRACTION = 64, 0.25
# Of the views that found a line, those whose box is at least this share of the largest saw all
# of it, and one of them is read.
WHOLE_LINE = 0.8
# A line read less surely than this from the view that found it is read in the other views too,
# and the surest reading kept.
REREAD_BELOW = 0.9
# A fallback view's line counts where it runs this many of its heights (two characters or so)
# past what the other views found on its rows.
BEYOND_HEIGHTS = 2.0
# Fallback views are for small faint text (larger text is legible in the others): their lines
# this tall or taller are anatomy smoothed into letter-like blobs.
FALLBACK_MAX_HEIGHT = 24
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Word:
    """A word of a line: its text, its box (inclusive, frame pixels) and the mean probability of
    its characters."""

    text: str
    box: Box
    score: float


@dataclass(frozen=True)
class TextLine:
    """A detected line of text: box (inclusive, frame pixels), recognised text, recognition
    score (mean character probability), words; `det_score` and `view` say how it was found."""

    box: Box
    text: str
    score: float
    words: list[Word] = field(default_factory=list)
    det_score: float = 0.0
    view: str = ""


@dataclass(frozen=True)
class _Detection:
    box: Box
    score: float
    view: int


def model_dir() -> Path:
    """The folder of ONNX models shipped inside the installed rapidocr wheel."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("rapidocr is not installed; its wheel carries the OCR models")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def flushed_model(path: Path) -> bytes:
    """The ONNX model at `path` with the denormal float32 values of its initializers set to 0.

    Two 1×1 convolutions of the detector hold weights too small for a normal float32 (24 % and
    63 % of them), which x86 multiplies many times slower: they took 60 % of its time. Flushed,
    a 512 × 512 pass costs 0.07 CPU s instead of 0.24 and gives the same probabilities to the
    last bit. (onnxruntime's `session.set_denormal_as_zero` does as much, but also sets the flag
    on the calling thread, for every float computed in the process.)"""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    tiny = np.finfo(np.float32).tiny
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(tensor)
        denormal = (values != 0) & (np.abs(values) < tiny)
        if denormal.any():
            tensor.CopyFrom(numpy_helper.from_array(np.where(denormal, np.float32(0), values),
                                                    tensor.name))
    return model.SerializeToString()


def providers_for(device: str) -> list:
    """onnxruntime execution providers for `device` ("cpu", "cuda" or "auto")."""
    available = ort.get_available_providers()
    if device == "auto":
        device = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError(
                "device 'cuda' asked for, but onnxruntime offers no CUDAExecutionProvider "
                "(install onnxruntime-gpu on GPU runners)"
            )
        # Input shapes change with every frame: a heuristic algorithm choice, not a search.
        return [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}),
                "CPUExecutionProvider"]
    if device != "cpu":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', not {device!r}")
    return ["CPUExecutionProvider"]


class TextReader:
    """Detect and recognise text lines in reading views.

    One instance holds the two ONNX sessions; build it once per process and reuse it. Reading is
    deterministic: the same image gives the same lines.
    """

    def __init__(self, *, device: str = "auto", threads: int = 0, min_side: int = 512,
                 max_side: int = 1600, max_upscale: float = 2.0, det_thresh: float = 0.3,
                 box_thresh: float = 0.5, unclip_ratio: float = 1.6, min_box_height: int = 4,
                 rec_batch: int | None = None, rec_squeeze: float = 0.8, rec_cache: int = 4096,
                 min_text_score: float = 0.0):
        path = model_dir()
        for name in (DET_MODEL, REC_MODEL):
            if not (path / name).is_file():
                raise RuntimeError(f"{name} is missing from the rapidocr wheel at {path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or available_cpus()
        # No spinning: the pool's threads would burn the CPU the calling thread or another
        # process needs. On two cores, a 512 × 512 frame took twice the time with spinning (even
        # stopped after each run) while another process was busy, and saved 13 % when idle.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.providers = providers_for(device)
        # The detector's denormal weights flushed to zero (see flushed_model). The recogniser
        # holds a few hundred, which cost nothing measurable: it is loaded from its file (a
        # session loaded from bytes keeps them, 21 MB more memory).
        self._det = ort.InferenceSession(flushed_model(path / DET_MODEL), options,
                                         providers=self.providers)
        self._rec = ort.InferenceSession(str(path / REC_MODEL), options, providers=self.providers)
        self._det_input = self._det.get_inputs()[0].name
        self._rec_input = self._rec.get_inputs()[0].name
        characters = self._rec.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._charset = ["", *characters, " "]  # CTC blank first, space last (PaddleOCR)
        self.device = "cuda" if "CUDAExecutionProvider" in self._det.get_providers() else "cpu"
        self.min_side, self.max_side, self.max_upscale = min_side, max_side, max_upscale
        self.det_thresh, self.box_thresh, self.unclip_ratio = det_thresh, box_thresh, unclip_ratio
        self.min_box_height = min_box_height
        # On CPU one line per run is fastest (batches cost more than their parts); GPUs batch.
        self.rec_batch = max(1, rec_batch or (16 if self.device == "cuda" else 1))
        self.rec_squeeze = rec_squeeze
        self.rec_cache = rec_cache
        self._cache: OrderedDict[bytes, tuple[str, float, list]] = OrderedDict()
        self._columns = 0
        self.min_text_score = min_text_score

    # --- public ---------------------------------------------------------------------------

    def read(self, view: View | np.ndarray | Sequence[View],
             timings: dict[str, float] | None = None) -> list[TextLine]:
        """Text lines of one view (or an 8-bit image), or of several views of the same frame,
        merged: a line seen in several views is reported once. `timings`, when given, receives
        seconds per step ("detect", for all the views searched, and "recognize") and counts
        ("detect_views", "rec_lines", "rec_columns")."""
        views = [view] if isinstance(view, (View, np.ndarray)) else list(view)
        raw = [v.image if isinstance(v, View) else v for v in views]
        images = [_as_bgr(image) for image in raw]
        names = [v.name if isinstance(v, View) else f"view{i}" for i, v in enumerate(views)]
        if not images:
            return []
        self._columns = 0
        # Views only read (where another view found text) are never searched. One run per
        # view: a batch of views costs the same CPU time and holds twice the detector's memory.
        searched = [i for i, v in enumerate(views) if not isinstance(v, View) or v.detect]
        fallback = {i for i, v in enumerate(views) if isinstance(v, View) and v.fallback}
        start = time.perf_counter()
        detections = [d for i in searched if i not in fallback for d in self._search(views[i], i)]
        detections += [d for i in searched if i in fallback for d in self._search(views[i], i)
                       if d.box[3] - d.box[1] < FALLBACK_MAX_HEIGHT and _beyond(d.box, detections)]
        if timings is not None:
            timings["detect"] = time.perf_counter() - start
            timings["detect_views"] = len(searched)
        start = time.perf_counter()
        rereading = [i for i, v in enumerate(views) if not isinstance(v, View) or v.reread]
        fitted_in = [names.index(v.fit_in) if isinstance(v, View) and v.fit_in in names else i
                     for i, v in enumerate(views)]
        lines = self._recognize_lines(images, names, _merge(detections, set(rereading)),
                                      rereading, timings, fitted_in)
        if timings is not None:
            timings["recognize"] = time.perf_counter() - start
        return lines

    def read_frame(self, pixels: np.ndarray, ds: Dataset, **view_options) -> list[TextLine]:
        """Text lines of one decoded frame, read in all its reading views."""
        return self.read(reading_views(pixels, ds, **view_options))

    def _search(self, view: View | np.ndarray, index: int) -> list[_Detection]:
        """`detect` on a view, only in its rows when it names them."""
        if not isinstance(view, View):
            return self.detect(view, index)
        if view.rows is None:
            return self.detect(view.image, index)
        top, bottom = view.rows
        found = []
        for det in self.detect(view.image[top:bottom + 1], index):
            x1, y1, x2, y2 = det.box
            found.append(_Detection((x1, y1 + top, x2, y2 + top), det.score, det.view))
        return found

    def detect(self, image: np.ndarray, view: int = 0) -> list[_Detection]:
        """Axis-aligned text-line boxes in `image` (8-bit BGR or grey), frame coordinates."""
        image = image if image.ndim == 2 and image.dtype == np.uint8 else _as_bgr(image)
        rows, columns = image.shape[:2]
        scale = self.scale_for(rows, columns)
        if scale != 1.0:
            # Resized in BGR: OpenCV's cubic interpolation of one channel rounds differently.
            image = _as_bgr(image)
            interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
            image = cv2.resize(image, (max(1, round(columns * scale)), max(1, round(rows * scale))),
                               interpolation=interpolation)
        height, width = image.shape[:2]
        padded = cv2.copyMakeBorder(image, 0, -height % 32, 0, -width % 32, cv2.BORDER_REPLICATE)
        blob = padded.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
        # A grey view is normalised once and repeated into the three channels (a tenth of the
        # time of normalising its BGR copy).
        blob = (np.ascontiguousarray(np.broadcast_to(blob, (1, 3, *blob.shape))) if blob.ndim == 2
                else blob.transpose(2, 0, 1)[None])
        prob = self._det.run(None, {self._det_input: blob})[0][0, 0, :height, :width]
        found = []
        max_height = max(REGION_HEIGHT, rows * REGION_FRACTION) * height / rows
        for quad, score in _db_boxes(prob, self.det_thresh, self.box_thresh, self.unclip_ratio,
                                     max_height):
            quad = quad / np.array([width / columns, height / rows], np.float32)
            x1, y1 = np.floor(quad.min(axis=0)).astype(int)
            x2, y2 = np.ceil(quad.max(axis=0)).astype(int)
            x1, y1 = max(int(x1), 0), max(int(y1), 0)
            x2, y2 = min(int(x2), columns - 1), min(int(y2), rows - 1)
            if min(x2 - x1, y2 - y1) + 1 < self.min_box_height:
                continue
            if y2 - y1 + 1 > max(REGION_HEIGHT, rows * REGION_FRACTION):
                continue  # a region of anatomy or texture, not a line of annotation
            found.append(_Detection((x1, y1, x2, y2), score, view))
        return found

    def scale_for(self, rows: int, columns: int) -> float:
        """The factor the detector resizes a rows × columns image by."""
        scale = 1.0
        if min(rows, columns) < self.min_side:
            scale = min(self.min_side / min(rows, columns), self.max_upscale)
        if max(rows, columns) * scale > self.max_side:
            scale = self.max_side / max(rows, columns)
        return scale

    def recognize(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float, list]]:
        """Text, score and per-character (char, x-centre in crop pixels, probability) of each
        8-bit BGR crop of one text line. Crops already read (same pixels) come from a cache."""
        results: list[tuple[str, float, list] | None] = [None] * len(crops)
        keys = [_crop_key(crop, self.rec_squeeze) for crop in crops]
        for i, key in enumerate(keys):
            if key in self._cache:
                self._cache.move_to_end(key)
                results[i] = self._cache[key]
        todo = [i for i in range(len(crops)) if results[i] is None]
        widths = {i: _rec_width(crops[i], self.rec_squeeze) for i in todo}
        todo.sort(key=lambda i: widths[i])
        while todo:
            # A batch holds crops of nearly the same width, so that padding costs little.
            batch = [i for i in todo[:self.rec_batch] if widths[i] <= 1.15 * widths[todo[0]]]
            todo = todo[len(batch):]
            padded_width = max(widths[i] for i in batch)
            blob = np.zeros((len(batch), 3, REC_HEIGHT, padded_width), np.float32)
            for row, i in enumerate(batch):
                resized = cv2.resize(crops[i], (widths[i], REC_HEIGHT))
                blob[row, :, :, :widths[i]] = (
                    resized.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
                ).transpose(2, 0, 1)
            probs = self._rec.run(None, {self._rec_input: blob})[0]
            step = padded_width / probs.shape[1]  # input pixels per output column
            for row, i in enumerate(batch):
                to_crop = crops[i].shape[1] / widths[i]
                results[i] = self._decode(probs[row], step * to_crop)
                if self.rec_cache:
                    self._cache[keys[i]] = results[i]
                    if len(self._cache) > self.rec_cache:
                        self._cache.popitem(last=False)
        return results  # type: ignore[return-value]

    def clear_cache(self) -> None:
        """Forget the lines read so far (the cache of recognised crops)."""
        self._cache.clear()

    # --- internals ------------------------------------------------------------------------

    def _decode(self, probs: np.ndarray, column_px: float) -> tuple[str, float, list]:
        best = probs.argmax(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        columns = np.nonzero(keep)[0]
        chars = [(self._charset[best[c]], (c + 0.5) * column_px, float(probs[c, best[c]]))
                 for c in columns]
        text = "".join(c for c, _, _ in chars)
        score = float(np.mean([p for _, _, p in chars])) if chars else 0.0
        return text, score, chars

    def _recognize_lines(self, images: list[np.ndarray], names: list[str],
                         merged: list[_Detection], rereading: list[int],
                         timings: dict[str, float] | None = None,
                         fitted_in: list[int] | None = None) -> list[TextLine]:
        """`fitted_in`: per view, the view whose ink its lines are fitted to (itself unless
        named)."""
        fitted_in = fitted_in or list(range(len(images)))
        readings = self._read_boxes(images, [(det.box, det.view) for det in merged])
        rereads = [(k, view) for k, (det, reading) in enumerate(zip(merged, readings))
                   if reading[1] < REREAD_BELOW for view in rereading if view != det.view]
        if rereads:
            again = self._read_boxes(images, [(merged[k].box, view) for k, view in rereads])
            for (k, view), reading in zip(rereads, again):
                if reading[1] > readings[k][1]:
                    readings[k] = reading
                    merged[k] = _Detection(merged[k].box, merged[k].score, view)
        if timings is not None:
            timings["rec_lines"] = len(merged) + len(rereads)
            timings["rec_columns"] = self._columns
        lines = []
        for det, (text, score, chars, turned) in zip(merged, readings):
            text = text.strip()
            if not text or score < self.min_text_score:
                continue
            box = det.box
            if turned:
                words = [Word(w, box, score) for w in text.split()]
            else:
                box, words = fit_to_ink(images[fitted_in[det.view]], box,
                                        split_words(chars, box))
            lines.append(TextLine(box, text, round(score, 5), words, round(det.score, 5),
                                  names[det.view]))
        lines.sort(key=lambda line: (line.box[1], line.box[0]))
        return lines

    def _read_boxes(self, images: list[np.ndarray],
                    boxes: list[tuple[Box, int]]) -> list[tuple[str, float, list, bool]]:
        """Read each (box, view): text, score, characters, and whether it was read turned."""
        crops, turned = [], []
        for (x1, y1, x2, y2), view in boxes:
            crop = images[view][y1:y2 + 1, x1:x2 + 1]
            turn = crop.shape[0] >= 1.5 * crop.shape[1]  # vertical text: read it turned
            crops.append(np.ascontiguousarray(np.rot90(crop)) if turn else crop)
            turned.append(turn)
        self._columns += sum(_rec_width(crop, self.rec_squeeze) for crop in crops)
        return [(*reading, turn) for reading, turn in zip(self.recognize(crops), turned)]


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"views are 8-bit, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def _crop_key(crop: np.ndarray, squeeze: float) -> bytes:
    digest = hashlib.blake2b(np.ascontiguousarray(crop).data, digest_size=16)
    digest.update(repr((crop.shape, squeeze)).encode())
    return digest.digest()


def _rec_width(crop: np.ndarray, squeeze: float = 1.0) -> int:
    rows, columns = crop.shape[:2]
    width = math.ceil(REC_HEIGHT * columns * squeeze / max(rows, 1))
    return int(min(max(width, 8), REC_MAX_WIDTH))


def _db_boxes(prob: np.ndarray, thresh: float, box_thresh: float, unclip_ratio: float,
              max_height: float) -> list[tuple[np.ndarray, float]]:
    """DB post-processing: boxes (4×2 corner arrays, detector-input pixels) and scores from the
    probability map. Each region's minimum-area rectangle (upright when nearly so), scored by the
    mean probability inside the region, grown on every side by area × ratio / perimeter (DB's
    unclip of a rectangle).

    A region thicker than LINE_MAX_THICKNESS or taller than `max_height` is hardly a line: more
    often a textured area the detector is unsure about, which may hold lines joined to it by a
    haze of low probability. It is thresholded again, higher (up to DB_TOP_THRESHOLD), until it
    falls apart into lines or vanishes; what is left at the top threshold is kept (large text).
    """
    boxes: list[tuple[np.ndarray, float]] = []
    _db_regions(prob, (prob > thresh).astype(np.uint8), thresh, box_thresh, unclip_ratio,
                max_height, boxes)
    return boxes


def _db_regions(prob: np.ndarray, mask: np.ndarray, thresh: float, box_thresh: float,
                unclip_ratio: float, max_height: float,
                boxes: list[tuple[np.ndarray, float]]) -> None:
    mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < 3:
            continue
        x1, y1, bw, bh = cv2.boundingRect(contour)
        region = np.zeros((bh, bw), np.uint8)
        cv2.drawContours(region, [contour - [x1, y1]], -1, 1, thickness=cv2.FILLED)
        upright = _nearly_upright(angle)
        if upright:
            # Annotations are horizontal: the upright box of the rows the line fills, not a
            # rectangle tilted or stretched by whatever touches it.
            top, bottom = _line_rows(region)
            region[:top], region[bottom + 1:] = 0, 0
            h, w = bottom - top + 1, bw
            (cx, cy), angle = (x1 + bw / 2, y1 + top + h / 2), 0.0
        quad = cv2.boxPoints(((cx, cy), (w, h), angle))
        thick = min(w, h) > LINE_MAX_THICKNESS or quad[:, 1].max() - quad[:, 1].min() > max_height
        if thick and thresh < DB_TOP_THRESHOLD:
            inside = np.zeros_like(mask)
            cv2.drawContours(inside, [contour], -1, 1, thickness=cv2.FILLED)
            higher = min(thresh + 0.2, DB_TOP_THRESHOLD)
            _db_regions(prob, inside & (prob > higher).astype(np.uint8), higher, box_thresh,
                        unclip_ratio, max_height, boxes)
            continue
        # Score: the mean probability over the region itself (DB's "slow" score), which
        # protrusions joined to a line do not dilute as they do its rectangle.
        score = cv2.mean(prob[y1:y1 + bh, x1:x1 + bw], region)[0]
        if score < box_thresh:
            continue
        grow = w * h * unclip_ratio / (2 * (w + h))
        boxes.append((cv2.boxPoints(((cx, cy), (w + 2 * grow, h + 2 * grow), angle)), score))


def _line_rows(region: np.ndarray) -> tuple[int, int]:
    """First and last row of a region's line: rows at its top and bottom filled across less
    than LINE_ROW_FILL of the fullest row's width are protrusions, trimmed."""
    filled = region.sum(axis=1)
    rows = np.nonzero(filled >= LINE_ROW_FILL * filled.max())[0]
    return int(rows[0]), int(rows[-1])


def _nearly_upright(angle: float) -> bool:
    """Whether a minimum-area rectangle (OpenCV's angle convention) lies within
    UPRIGHT_TOLERANCE degrees of horizontal or vertical."""
    tilt = abs(angle) % 90
    return min(tilt, 90 - tilt) <= UPRIGHT_TOLERANCE


def _area(box: Box) -> int:
    return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def _beyond(box: Box, detections: list[_Detection]) -> bool:
    """Whether `box` holds text the `detections` lack: it overlaps none of them, or runs at
    least BEYOND_HEIGHTS of its height past the columns of those it overlaps (a whole line
    where another view found one word of it)."""
    x1, y1, x2, y2 = box
    covered = np.zeros(x2 - x1 + 1, bool)
    for det in detections:
        a1, b1, a2, b2 = det.box
        if a1 <= x2 and x1 <= a2 and b1 <= y2 and y1 <= b2:
            covered[max(a1, x1) - x1:min(a2, x2) - x1 + 1] = True
    return not covered.any() or np.count_nonzero(~covered) >= BEYOND_HEIGHTS * (y2 - y1 + 1)


def _same_line(a: Box, b: Box) -> bool:
    """Boxes that show the same text: of similar heights (a line, not a block or a region
    swallowing lines), overlapping by at least half the smaller one's area and height."""
    ha, hb = a[3] - a[1] + 1, b[3] - b[1] + 1
    if min(ha, hb) < 0.5 * max(ha, hb):
        return False
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ix <= 0 or iy < 0.5 * min(ha, hb):
        return False
    return ix * iy >= 0.5 * min(_area(a), _area(b))


def _merge(detections: list[_Detection], preferred: set[int]) -> list[_Detection]:
    """One detection per group of overlapping ones (any view): the union of their boxes, scored
    by the group's most confident member and read from a view that saw the whole line (a
    member box nearly as large as the largest), one of the `preferred` views if it can (an
    equalised view misreads what the others read well), else the most confident."""
    parent = list(range(len(detections)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(detections)):
        for j in range(i + 1, len(detections)):
            if _same_line(detections[i].box, detections[j].box):
                parent[root(j)] = root(i)
    groups: dict[int, list[_Detection]] = {}
    for i, det in enumerate(detections):
        groups.setdefault(root(i), []).append(det)
    merged = []
    for members in groups.values():
        boxes = np.array([m.box for m in members])
        union = (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()),
                 int(boxes[:, 3].max()))
        largest = max(_area(m.box) for m in members)
        whole = [m for m in members if _area(m.box) >= WHOLE_LINE * largest]
        best = max(whole, key=lambda m: (m.view in preferred, m.score, -m.view))
        merged.append(_Detection(union, max(m.score for m in members), best.view))
    return merged


def split_words(chars: list, box: Box) -> list[Word]:
    """Split a line's characters (char, x-centre in the crop, probability) at spaces into words
    with boxes: from half a character before the first centre to half after the last."""
    x1, y1, x2, y2 = box
    groups: list[list] = [[]]
    for char in chars:
        if char[0].isspace():
            groups.append([])
        else:
            groups[-1].append(char)
    groups = [g for g in groups if g]
    centres = [c[1] for g in groups for c in g]
    gaps = [b[1] - a[1] for g in groups for a, b in zip(g, g[1:])]
    if gaps:
        half = float(np.median(gaps)) / 2
    else:
        half = (x2 - x1 + 1) / max(len(centres), 1) / 2
    words = []
    for g in groups:
        left = max(x1, math.floor(x1 + g[0][1] - half))
        right = min(x2, math.ceil(x1 + g[-1][1] + half))
        words.append(Word("".join(c[0] for c in g), (left, y1, max(left, right), y2),
                          round(float(np.mean([c[2] for c in g])), 5)))
    return words

