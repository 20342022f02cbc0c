"""Blocks: a write region plus read context, cut on a grid aligned to zarr chunks.

As in daisy, a ``Block`` is frozen and its id is derived from its write region
(its grid position), so a block keeps its id whatever subset of blocks a run
touches. All coordinates are voxels, axis order (z, y, x).

Reads and writes of a block go through ``read`` / ``write`` here, which count
seconds and bytes into the current block's ``IOStats`` — the runner reports
I/O against compute per block without stages timing anything themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import itertools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cxgraph.errors import ConfigError

ZYX = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Roi:
    """A box [begin, end) in voxels, (z, y, x)."""

    begin: ZYX
    end: ZYX

    @property
    def shape(self) -> ZYX:
        return tuple(e - b for b, e in zip(self.begin, self.end, strict=True))  # type: ignore[return-value]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(b, e) for b, e in zip(self.begin, self.end, strict=True))  # type: ignore[return-value]

    def intersect(self, other: Roi) -> Roi:
        b = tuple(max(a, c) for a, c in zip(self.begin, other.begin, strict=True))
        e = tuple(max(bb, min(a, c)) for bb, a, c in zip(b, self.end, other.end, strict=True))
        return Roi(b, e)  # type: ignore[arg-type]

    def empty(self) -> bool:
        return any(s <= 0 for s in self.shape)

    def grow(self, margin: Sequence[int]) -> Roi:
        return Roi(tuple(b - m for b, m in zip(self.begin, margin, strict=True)),  # type: ignore[arg-type]
                   tuple(e + m for e, m in zip(self.end, margin, strict=True)))

    def relative_to(self, outer: Roi) -> tuple[slice, slice, slice]:
        """Slices selecting this box inside an array that covers ``outer``."""
        return tuple(slice(b - o, e - o)  # type: ignore[return-value]
                     for b, e, o in zip(self.begin, self.end, outer.begin, strict=True))

    def as_list(self) -> list[int]:
        return [*self.begin, *self.end]

    @classmethod
    def parse(cls, text: str) -> Roi:
        """``"z0:z1,y0:y1,x0:x1"`` (voxels) as a Roi."""
        try:
            parts = [tuple(int(v) for v in p.split(":")) for p in text.split(",")]
            if len(parts) != 3 or any(len(p) != 2 for p in parts):
                raise ValueError
        except ValueError:
            raise ConfigError(f"region {text!r}: expected z0:z1,y0:y1,x0:x1 in voxels") from None
        return cls(tuple(p[0] for p in parts), tuple(p[1] for p in parts))  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Block:
    """One unit of blockwise work: writes ``write_roi``, may read ``read_roi``."""

    block_id: int
    write_roi: Roi
    read_roi: Roi


@dataclasses.dataclass(frozen=True)
class BlockGrid:
    """Blocks of ``block_shape`` tiling a volume of ``shape``; read regions grow by ``context``.

    Read regions are clipped to the volume. ``block_shape`` should be a multiple
    of the zarr chunk shape so parallel blocks never write the same chunk.
    """

    shape: ZYX
    block_shape: ZYX
    context: ZYX = (0, 0, 0)

    def __post_init__(self):
        if any(b <= 0 for b in self.block_shape):
            raise ConfigError(f"block_shape must be positive, got {self.block_shape}")

    @property
    def grid_shape(self) -> ZYX:
        return tuple(-(-s // b) for s, b in zip(self.shape, self.block_shape, strict=True))  # type: ignore[return-value]

    def block(self, index: ZYX) -> Block:
        begin = tuple(i * b for i, b in zip(index, self.block_shape, strict=True))
        end = tuple(min(s, bb + b)
                    for s, bb, b in zip(self.shape, begin, self.block_shape, strict=True))
        write = Roi(begin, end)  # type: ignore[arg-type]
        read = write.grow(self.context).intersect(self.volume)
        gz, gy, gx = self.grid_shape
        block_id = (index[0] * gy + index[1]) * gx + index[2]
        return Block(block_id, write, read)

    @property
    def volume(self) -> Roi:
        return Roi((0, 0, 0), self.shape)

    def blocks(self) -> list[Block]:
        return [self.block(i) for i in itertools.product(*map(range, self.grid_shape))]  # type: ignore[arg-type]

    def blocks_in(self, region: Roi) -> list[Block]:
        """Blocks whose write region intersects ``region``."""
        return [b for b in self.blocks() if not b.write_roi.intersect(region).empty()]


def check_chunk_aligned(block_shape: Sequence[int], chunks: Sequence[int]) -> None:
    """Refuse a block shape that would let two blocks write one chunk."""
    if any(b % c for b, c in zip(block_shape, chunks[-3:], strict=True)):
        raise ConfigError(
            f"block_shape {tuple(block_shape)} is not a multiple of the chunk shape "
            f"{tuple(chunks[-3:])}; parallel blocks would write the same chunk"
        )


# --- I/O accounting ----------------------------------------------------------------


@dataclasses.dataclass
class IOStats:
    io_s: float = 0.0
    bytes_read: int = 0
    bytes_written: int = 0


_io_stats: contextvars.ContextVar[IOStats | None] = contextvars.ContextVar("io", default=None)


@contextlib.contextmanager
def counting_io() -> Iterator[IOStats]:
    """Collect the I/O of ``read``/``write`` calls made inside the block."""
    stats = IOStats()
    token = _io_stats.set(stats)
    try:
        yield stats
    finally:
        _io_stats.reset(token)


def read(array, roi: Roi) -> np.ndarray:
    """``array[roi]`` (leading non-spatial axes kept), with I/O accounted to the block."""
    t0 = time.perf_counter()
    data = np.asarray(array[(..., *roi.slices)])
    stats = _io_stats.get()
    if stats is not None:
        stats.io_s += time.perf_counter() - t0
        stats.bytes_read += data.nbytes
    return data


def write(array, roi: Roi, data: np.ndarray) -> None:
    """``array[roi] = data``, with I/O accounted to the block."""
    t0 = time.perf_counter()
    array[(..., *roi.slices)] = data
    stats = _io_stats.get()
    if stats is not None:
        stats.io_s += time.perf_counter() - t0
        stats.bytes_written += data.nbytes


# --- per-block table rows ------------------------------------------------------------


def write_block_rows(parts_dir: str | Path, name: str, block_id: int,
                     rows: list[dict[str, Any]]) -> None:
    """Save one block's rows of table ``name`` as its own Parquet part.

    A stage assembles the table with ``collect_block_rows`` once every block is
    done; parts of blocks finished before a crash survive it, so a resumed run
    needs only the blocks it still has to do.
    """
    if rows:
        Path(parts_dir).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows),
                       Path(parts_dir) / f"{name}_{block_id:06d}.parquet")


def collect_block_rows(parts_dir: str | Path, name: str) -> pa.Table | None:
    """All blocks' parts of table ``name`` in block order (None if no block wrote rows)."""
    files = sorted(Path(parts_dir).glob(f"{name}_*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None
