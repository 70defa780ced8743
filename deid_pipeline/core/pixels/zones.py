"""Fixed regions a device always writes PHI into, blacked out whatever the OCR reads there (CTP's
pixel scripts): keyed on the file's Manufacturer and Manufacturer's Model Name (regular
expressions, matched whole and without regard to case) and, optionally, its matrix size. Boxes
are inclusive (x1, y1, x2, y2), in pixels or as fractions of the columns and rows (a header band
that scales with the matrix). Zones are data: the `pixels: zones:` list of a policy file."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

Box = tuple[int, int, int, int]
UNITS = frozenset({"pixels", "fraction"})


@dataclass(frozen=True)
class Zone:
    manufacturer: str = ".*"
    model: str = ".*"
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    units: str = "pixels"  # pixels | fraction (of columns for x, of rows for y)
    rows: int | None = None  # only frames of this size, when given
    columns: int | None = None
    source: str = ""  # "file:line" of the policy entry, for the findings' reason

    def applies_to(self, ds: Dataset) -> bool:
        return (re.fullmatch(self.manufacturer, str(ds.get("Manufacturer", "")), re.IGNORECASE)
                is not None
                and re.fullmatch(self.model, str(ds.get("ManufacturerModelName", "")),
                                 re.IGNORECASE) is not None
                and self.rows in (None, int(ds.Rows))
                and self.columns in (None, int(ds.Columns)))

    def boxes_for(self, ds: Dataset) -> list[Box]:
        """The boxes in `ds`'s pixels, clipped to its frame; a fraction box covers every pixel
        it touches."""
        rows, columns = int(ds.Rows), int(ds.Columns)
        found = []
        for x1, y1, x2, y2 in self.boxes:
            if self.units == "fraction":
                x1, x2 = math.floor(x1 * columns), math.ceil(x2 * columns) - 1
                y1, y2 = math.floor(y1 * rows), math.ceil(y2 * rows) - 1
            box = (max(0, int(x1)), max(0, int(y1)), min(columns - 1, int(x2)),
                   min(rows - 1, int(y2)))
            if box[0] <= box[2] and box[1] <= box[3]:
                found.append(box)
        return found
