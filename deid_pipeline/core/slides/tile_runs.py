"""Where a page's tiles (or strips) lie in its file, as runs of back-to-back bytes.

Scanners write a level's tiles one after another, so a level is usually a single run: it is
copied as one byte range and every tile keeps its place in it, moved by one constant. Bytes
between runs (a directory, another page's data, padding) are not copied. Tiles that share bytes
(a writer may store one blank tile for many places) still share them in the copy.

What is kept per tile is two numpy integers (which tile, at what offset, in offset order);
everything else is per run, or computed for one window of tiles at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileRuns:
    counts: np.ndarray  # the byte count of every tile, in the page's order (0: no tile)
    order: np.ndarray  # indices of the tiles that hold data, by offset
    starts: np.ndarray  # their offsets, in that order
    run_starts: np.ndarray
    run_ends: np.ndarray

    @classmethod
    def of(cls, offsets: np.ndarray, counts: np.ndarray) -> TileRuns:
        """The runs of the tiles at `offsets` (int64) with `counts` (int64) bytes each."""
        held = np.flatnonzero(counts > 0)
        order = held[np.argsort(offsets[held], kind="stable")]
        del held  # a tile table of its own: gone before the next ones are made
        starts = offsets[order]
        if not len(starts):
            return cls(counts, order, starts, starts, starts)
        reach = starts + counts[order]
        np.maximum.accumulate(reach, out=reach)  # the furthest byte of the tiles so far
        firsts = np.flatnonzero(np.append(True, starts[1:] > reach[:-1]))  # after a gap
        lasts = np.append(firsts[1:], len(starts)) - 1
        return cls(counts, order, starts, starts[firsts], reach[lasts])

    @property
    def size(self) -> int:
        """Bytes in all runs: what a copy of the page's data takes."""
        return int((self.run_ends - self.run_starts).sum())

    def packed_targets(self, at: int) -> np.ndarray:
        """Where each run lands when the runs are copied one after another from `at`."""
        lengths = self.run_ends - self.run_starts
        return at + np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)

    def ends(self, first: int, stop: int) -> np.ndarray:
        """Where the sorted tiles `first:stop` end."""
        return self.starts[first:stop] + self.counts[self.order[first:stop]]

    def runs(self, first: int, stop: int) -> np.ndarray:
        """The run each of the sorted tiles `first:stop` lies in."""
        return np.searchsorted(self.run_starts, self.starts[first:stop], side="right") - 1

    def landing(self, first: int, stop: int, targets: np.ndarray) -> np.ndarray:
        """Where the sorted tiles `first:stop` land when each run is copied to its target."""
        return self.starts[first:stop] + (targets - self.run_starts)[self.runs(first, stop)]

    def windows(self, size: int) -> Iterator[tuple[int, int]]:
        """Slices `first:stop` of the sorted tiles, in order, that span at most `size` bytes
        each (a single larger tile gets a window of its own), cut only where no two tiles
        share a byte across the cut."""
        count, first = len(self.starts), 0
        while first < count:
            stop = max(first + 1, int(np.searchsorted(self.starts, self.starts[first] + size)))
            while stop < count and self.starts[stop] < self.ends(first, stop).max():
                stop += 1
            yield first, stop
            first = stop
