"""Blocks: a write region plus read context, cut on a grid aligned to zarr chunks.

As in daisy, a ``Block`` is frozen and its id is derived from its write region:
the id is its grid position packed by ``cxgraph.ids.block_id``, so a block keeps
its id whatever subset of blocks a run touches and when the volume grows. All
coordinates are voxels, axis order (z, y, x).

Reads and writes of a block go through ``read`` / ``write`` here, which count
seconds and bytes into the current block's ``IOStats`` and hash every chunk a
block writes — the engine reports I/O against compute per block, and builds
output hashes from chunk hashes, without stages timing or hashing anything.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import itertools
import time
from collections.abc import Iterator, Sequence

import numpy as np

from cxgraph.errors import ConfigError
from cxgraph.ids import block_id

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

    def __str__(self) -> str:
        return ",".join(f"{b}:{e}" for b, e in zip(self.begin, self.end, strict=True))

    @classmethod
    def from_list(cls, values: Sequence[int]) -> Roi:
        return cls(tuple(values[:3]), tuple(values[3:]))  # type: ignore[arg-type]

    @classmethod
    def parse(cls, text: str) -> Roi:
        """``"z0:z1,y0:y1,x0:x1"`` (voxels) as a Roi."""
        try:
            parts = [tuple(int(v) for v in p.split(":")) for p in text.split(",")]
            if len(parts) != 3 or any(len(p) != 2 for p in parts):
                raise ValueError
        except ValueError:
            raise ConfigError(f"region {text!r}: expected z0:z1,y0:y1,x0:x1 in voxels") from None
        roi = cls(tuple(p[0] for p in parts), tuple(p[1] for p in parts))  # type: ignore[arg-type]
        if roi.empty():
            raise ConfigError(f"region {text!r} is empty: every end must exceed its begin")
        return roi


@dataclasses.dataclass(frozen=True)
class Block:
    """One unit of blockwise work: writes ``write_roi``, may read ``read_roi``."""

    block_id: int
    index: ZYX  # position in the block grid (z, y, x)
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

    def block(self, index: Sequence[int]) -> Block:
        index = tuple(int(i) for i in index)
        begin = tuple(i * b for i, b in zip(index, self.block_shape, strict=True))
        end = tuple(min(s, bb + b)
                    for s, bb, b in zip(self.shape, begin, self.block_shape, strict=True))
        write = Roi(begin, end)  # type: ignore[arg-type]
        read = write.grow(self.context).intersect(self.volume)
        return Block(block_id(index), index, write, read)  # type: ignore[arg-type]

    @property
    def volume(self) -> Roi:
        return Roi((0, 0, 0), self.shape)

    def blocks(self) -> list[Block]:
        return [self.block(i) for i in itertools.product(*map(range, self.grid_shape))]

    def blocks_in(self, region: Roi) -> list[Block]:
        """Blocks whose write region intersects ``region``."""
        return [b for b in self.blocks() if not b.write_roi.intersect(region).empty()]

    def blocks_reading(self, region: Roi) -> list[Block]:
        """Blocks whose read region intersects ``region`` (their output depends on it)."""
        return [b for b in self.blocks() if not b.read_roi.intersect(region).empty()]


def check_chunk_aligned(block_shape: Sequence[int], chunks: Sequence[int]) -> None:
    """Refuse a block shape that would let two blocks write one chunk."""
    if any(b % c for b, c in zip(block_shape, chunks[-3:], strict=True)):
        raise ConfigError(
            f"block_shape {tuple(block_shape)} is not a multiple of the chunk shape "
            f"{tuple(chunks[-3:])}; parallel blocks would write the same chunk"
        )


# --- I/O accounting and chunk hashes -----------------------------------------------


@dataclasses.dataclass
class IOStats:
    io_s: float = 0.0
    bytes_read: int = 0
    bytes_written: int = 0
    # {output name: {chunk key "z.y.x": sha256 of the chunk's C-order bytes}}
    chunk_hashes: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)


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


def write(array, where: Roi | tuple[slice, ...], data: np.ndarray,
          name: str | None = None) -> None:
    """``array[where] = data``, with I/O accounted to the block and, when ``name`` (the
    output's name) is given, each chunk the write covers hashed into the block's record.

    ``where`` is a Roi over the last three axes (leading axes whole), or explicit
    slices of the leading axes (trailing axes whole), e.g. ``(slice(z, z + 1),)``.
    """
    t0 = time.perf_counter()
    data = np.asarray(data, dtype=array.dtype)
    begin, end = _box(array.shape, where)
    if name is not None:
        _check_whole_chunks(array, begin, end, name)
    array[tuple(slice(b, e) for b, e in zip(begin, end, strict=True))] = data.reshape(
        [e - b for b, e in zip(begin, end, strict=True)])
    stats = _io_stats.get()
    if stats is not None:
        stats.io_s += time.perf_counter() - t0
        stats.bytes_written += data.nbytes
        if name is not None:
            stats.chunk_hashes.setdefault(name, {}).update(
                chunk_hashes(array.chunks, array.shape, begin, end, data))


def _check_whole_chunks(array, begin: Sequence[int], end: Sequence[int], name: str) -> None:
    """Blocks own whole chunks: a write that covers part of one would race with the block
    next to it (and could not be hashed or put in place chunk by chunk)."""
    for b, e, c, s in zip(begin, end, array.chunks, array.shape, strict=True):
        if b % c or (e % c and e != s):
            raise ConfigError(
                f"write to {name}[{list(begin)}:{list(end)}] covers part of a chunk "
                f"(chunks {list(array.chunks)}); write each block's region whole")


def _box(shape: Sequence[int], where: Roi | tuple[slice, ...]) -> tuple[list[int], list[int]]:
    """Begin and end per axis of ``where`` in an array of ``shape``."""
    if isinstance(where, Roi):
        lead = len(shape) - 3
        return [0] * lead + list(where.begin), list(shape[:lead]) + list(where.end)
    begin, end = [], []
    for k, s in enumerate(shape):
        sl = where[k] if k < len(where) else slice(None)
        b, e, _ = sl.indices(s)
        begin.append(b)
        end.append(e)
    return begin, end


def chunk_hashes(chunks: Sequence[int], shape: Sequence[int], begin: Sequence[int],
                 end: Sequence[int], data: np.ndarray) -> dict[str, str]:
    """sha256 of each chunk (of an array with ``chunks`` and ``shape``) that ``data``,
    written at [begin, end), covers entirely. Keys: chunk grid positions "i.j.k...".
    Chunks covered only in part are skipped (blocks align to chunks, so none are)."""
    data = data.reshape([e - b for b, e in zip(begin, end, strict=True)])
    out = {}
    first = [b // c for b, c in zip(begin, chunks, strict=True)]
    last = [-(-e // c) for e, c in zip(end, chunks, strict=True)]
    for idx in itertools.product(*(range(a, b) for a, b in zip(first, last, strict=True))):
        lo = [i * c for i, c in zip(idx, chunks, strict=True)]
        hi = [min(s, l0 + c) for s, l0, c in zip(shape, lo, chunks, strict=True)]
        if any(l0 < b or h > e for l0, h, b, e in zip(lo, hi, begin, end, strict=True)):
            continue
        sl = tuple(slice(l0 - b, h - b) for l0, h, b in zip(lo, hi, begin, strict=True))
        piece = np.ascontiguousarray(data[sl])
        out[".".join(map(str, idx))] = hashlib.sha256(piece.tobytes()).hexdigest()
    return out
