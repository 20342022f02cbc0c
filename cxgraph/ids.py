"""64-bit ids with a documented layout, so any worker can mint them without asking anyone.

Layout (as PyChunkedGraph does it: the id says where it came from)::

    bit 63        0 (ids stay positive in Neo4j and Parquet, which are signed 64-bit)
    bits 56..62   kind: 1 = supervoxel, 2 = body, 3 = synapse (7 bits)
    bits 26..55   block grid position z, y, x: 10 bits each (up to 1024 blocks per axis)
    bits  0..25   local id inside the block (up to 67,108,863; 0 is never used)

A supervoxel id encodes the block grid position (z, y, x index) that produced
it plus a local id, so blocks computed on different machines never collide and
a block recomputed alone keeps the ids of every other block. A block's own id
(``block_id``) is its packed coordinates, ``(z << 20) | (y << 10) | x``: it
follows the block's position and stays stable when the volume grows.

Body ids name what a body is: ``body_id_from_hash`` of its sorted supervoxel ids
(56 bits of a sha256), so re-running a stage that produces the same body gives
it the same id, and an edit or a regional re-run that changes a body gives it a
new one (the old id is superseded, never reused for something else).
``body_id(counter)`` serves ids minted from the provenance store's counter
(``ProvenanceStore.mint_ids``) for objects without such a content.

>>> sv = supervoxel_id((2, 0, 5), 17)
>>> decode(sv)
IdParts(kind='supervoxel', block=(2, 0, 5), local=17)
>>> decode(block_id((2, 0, 5)))
IdParts(kind='block', block=(2, 0, 5), local=0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from cxgraph.errors import ConfigError

KIND_BITS = 7
AXIS_BITS = 10
LOCAL_BITS = 26
KIND_SHIFT = 56
BLOCK_SHIFT = LOCAL_BITS
MAX_AXIS = (1 << AXIS_BITS) - 1
MAX_LOCAL = (1 << LOCAL_BITS) - 1
KINDS = {"block": 0, "supervoxel": 1, "body": 2, "synapse": 3}
_KIND_NAMES = {v: k for k, v in KINDS.items()}


@dataclasses.dataclass(frozen=True)
class IdParts:
    kind: str
    block: tuple[int, int, int]  # block grid index (z, y, x)
    local: int


def _pack(index: Sequence[int]) -> int:
    if len(index) != 3 or any(not 0 <= int(i) <= MAX_AXIS for i in index):
        raise ConfigError(f"block index {tuple(index)}: expected 3 values in 0..{MAX_AXIS} "
                          f"(the id layout holds {MAX_AXIS + 1} blocks per axis; use larger "
                          "blocks for a volume this size)")
    z, y, x = (int(i) for i in index)
    return (z << (2 * AXIS_BITS)) | (y << AXIS_BITS) | x


def _unpack(packed: int) -> tuple[int, int, int]:
    return ((packed >> (2 * AXIS_BITS)) & MAX_AXIS, (packed >> AXIS_BITS) & MAX_AXIS,
            packed & MAX_AXIS)


def block_id(index: Sequence[int]) -> int:
    """The id of the block at grid position ``index`` (z, y, x)."""
    return _pack(index)


def block_index(block: int) -> tuple[int, int, int]:
    """The grid position (z, y, x) of block id ``block``."""
    return _unpack(int(block))


def supervoxel_id(index: Sequence[int], local: int) -> int:
    """Supervoxel ``local`` (1..MAX_LOCAL) of the block at grid position ``index``."""
    if not 0 < int(local) <= MAX_LOCAL:
        raise ConfigError(f"local supervoxel id {local}: expected 1..{MAX_LOCAL} per block")
    return (KINDS["supervoxel"] << KIND_SHIFT) | (_pack(index) << BLOCK_SHIFT) | int(local)


def supervoxel_ids(index: Sequence[int], local: np.ndarray) -> np.ndarray:
    """Vectorised ``supervoxel_id``: local labels (0 = background, kept 0) → uint64 ids."""
    local = np.asarray(local)
    if local.size and int(local.max()) > MAX_LOCAL:
        raise ConfigError(f"{int(local.max())} supervoxels in one block; the id layout holds "
                          f"{MAX_LOCAL}: use smaller blocks")
    base = np.uint64((KINDS["supervoxel"] << KIND_SHIFT) | (_pack(index) << BLOCK_SHIFT))
    out = local.astype(np.uint64) | base
    out[local == 0] = 0
    return out


def body_id_from_hash(digest: bytes) -> int:
    """A body id from a digest of what the body is (e.g. sha256 of its sorted supervoxel
    ids): 56 bits of it, so the same body always gets the same id and a changed one a new
    one."""
    return (KINDS["body"] << KIND_SHIFT) | (int.from_bytes(digest[:7], "big") or 1)


def body_id(counter: int) -> int:
    """Body id number ``counter`` (>= 1) of the workspace's body counter."""
    if not 0 < int(counter) < (1 << KIND_SHIFT):
        raise ConfigError(f"body counter {counter} out of range")
    return (KINDS["body"] << KIND_SHIFT) | int(counter)


def decode(value: int) -> IdParts:
    """Split an id into kind, block index and local part."""
    value = int(value)
    kind = _KIND_NAMES.get((value >> KIND_SHIFT) & ((1 << KIND_BITS) - 1), "unknown")
    if kind == "body":
        return IdParts(kind, (0, 0, 0), value & ((1 << KIND_SHIFT) - 1))
    if kind == "block":
        return IdParts(kind, _unpack(value), 0)
    return IdParts(kind, _unpack(value >> BLOCK_SHIFT), value & MAX_LOCAL)
