"""What a stage's functions see: ``StageContext`` (driver) and ``BlockContext`` (any worker).

Outputs are never written in place while a run is going: arrays and tables go to
the run's work directory ``WS/.work/<stage_run_id>/`` and the engine puts them in
place when the run is complete (see ``pipeline.engine.run``).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zarr

from cxgraph.errors import WorkspaceError
from cxgraph.params import Params
from cxgraph.provenance import StageRun
from cxgraph.workspace import Workspace, data_path, write_parquet
from pipeline.engine import blocks as blk
from pipeline.engine.blocks import Block, Roi
from pipeline.engine.stage import Stage

WHOLE = -1  # block id under which an output written whole (not by blocks) is recorded


@dataclasses.dataclass(frozen=True)
class WorkDir:
    """``WS/.work/<stage_run_id>/``: this run's outputs until they are put in place."""

    root: Path

    @property
    def zarr_path(self) -> Path:
        return self.root / "volumes.zarr"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def parts_dir(self) -> Path:
        return self.root / "parts"

    def table_path(self, name: str) -> Path:
        return self.tables_dir / f"{name}.parquet"


_open_arrays: dict[tuple[str, str], zarr.Array] = {}


def _open(path: str, mode: str) -> zarr.Array:
    key = (path, mode)
    if key not in _open_arrays:
        _open_arrays[key] = zarr.open_array(path, mode=mode)
    return _open_arrays[key]


@dataclasses.dataclass(frozen=True)
class BlockContext:
    """Picklable view of a stage run for ``process_block``, in whatever process runs it.

    ``arrays`` maps names to zarr paths: inputs at their live location, outputs at
    the run's work copy. ``outputs`` are the names whose writes are hashed.
    """

    params: Params
    plan: Any
    arrays: dict[str, str]
    outputs: frozenset[str]
    parts_dir: str
    regional: tuple[tuple[Roi, Params], ...] = ()  # parameters set for a region only

    def for_block(self, block: Block) -> BlockContext:
        """This context with the parameters ``block`` runs with: a regional entry's if the
        block's write region meets that region (the last such entry), else the run's."""
        for region, params in reversed(self.regional):
            if not region.intersect(block.write_roi).empty():
                return dataclasses.replace(self, params=params)
        return self

    def array(self, name: str) -> zarr.Array:
        if name not in self.arrays:
            raise WorkspaceError(f"array {name!r} is neither an input nor an output of this "
                                 f"stage; declared: {sorted(self.arrays)}")
        return _open(self.arrays[name], "r+" if name in self.outputs else "r")

    def read(self, name: str, roi: Roi) -> np.ndarray:
        """``name[roi]`` (leading non-spatial axes whole), I/O counted to the block."""
        return blk.read(self.array(name), roi)

    def write(self, name: str, where: Roi | tuple[slice, ...], data: np.ndarray) -> None:
        """Write an output's block region (a Roi, or slices of the leading axes); every chunk
        it covers is hashed into the block's ledger record."""
        if name not in self.outputs:
            raise WorkspaceError(f"{name!r} is not an output array of this stage")
        blk.write(self.array(name), where, data, name=name)

    def rows(self, table: str, block: Block, rows: list[dict[str, Any]]) -> None:
        """This block's rows of the output ``table`` (a ``block`` column is added). Saved at
        once, so a killed run keeps them; the engine assembles the table at the end."""
        if not rows:
            return
        out = [{**r, "block": block.block_id} for r in rows]
        write_parquet(Path(self.parts_dir) / table / f"{block.block_id:012d}.parquet",
                      pa.Table.from_pylist(out))


@dataclasses.dataclass
class StageContext:
    """The driver's view of a stage run: inputs, output creation, quality, tables."""

    ws: Workspace
    stage: Stage
    params: Params
    run: StageRun
    work: WorkDir
    region: Roi | None
    sources: dict[str, Path]
    regional: tuple[tuple[Roi, Params], ...] = ()  # see BlockContext.for_block
    written: dict[str, np.ndarray | None] = dataclasses.field(default_factory=dict)
    blocks: list[Block] = dataclasses.field(default_factory=list)  # the blocks this run covers

    # --- inputs ------------------------------------------------------------------
    def input_array(self, name: str) -> zarr.Array:
        self._declared("array", name, self.stage.inputs)
        return self.ws.array(name)

    def read_table(self, name: str) -> pa.Table:
        self._declared("table", name, self.stage.inputs)
        return self.ws.read_table(name)

    def source(self, name: str) -> Path:
        self._declared("source", name, self.stage.inputs)
        return self.sources[name]

    # --- outputs -----------------------------------------------------------------
    def create_array(self, name: str, shape, dtype, chunks=None, voxel_size=(1.0, 1.0, 1.0),
                     offset=(0.0, 0.0, 0.0), attrs: dict[str, Any] | None = None,
                     fill_value: Any = 0) -> zarr.Array:
        """Create output array ``name`` in the work directory (or open it when a resumed run
        made it already). In a regional run it must match the live array, whose chunks
        outside the region stay as they are."""
        self._declared("array", name, self.stage.outputs)
        if (self.work.zarr_path / name / "zarr.json").exists():
            return zarr.open_array(str(data_path(self.work.zarr_path, name)), mode="r+")
        if self.region is not None and self.ws.has_array(name):
            live = self.ws.array(name)
            if tuple(live.shape) != tuple(shape) or live.dtype != np.dtype(dtype):
                raise WorkspaceError(
                    f"regional run of {self.stage.name}: {name} would change from "
                    f"{live.shape} {live.dtype} to {tuple(shape)} {np.dtype(dtype)}; "
                    "run the stage on the whole volume instead")
            chunks = live.chunks
        return self.ws.create_array(name, shape, dtype, chunks, voxel_size, offset, attrs,
                                    fill_value, group=zarr.open_group(
                                        str(self.work.zarr_path), mode="a", zarr_format=3))

    def write_array(self, name: str, data: np.ndarray, **create: Any) -> None:
        """Write a whole (small) output array at once, e.g. a flat-field profile."""
        arr = self.create_array(name, data.shape, data.dtype, chunks=data.shape, **create)
        arr[...] = data
        self.written[name] = data

    def write_table(self, name: str, table: pa.Table) -> None:
        """Write a whole output table (put in place when the run completes)."""
        self._declared("table", name, self.stage.outputs)
        write_parquet(self.work.table_path(name), table)

    def block_table(self, name: str) -> pa.Table | None:
        """Per-block table ``name`` as it will be put in place, in block order (None if no
        rows): the rows this run's blocks wrote, and in a regional run the live table's
        rows of every block the run does not cover."""
        files = sorted((self.work.parts_dir / name).glob("*.parquet"))
        parts = [pq.read_table(f) for f in files]
        live = self.ws.table_path(name)
        if self.region is not None and live.exists():
            old = pq.read_table(live).replace_schema_metadata(None)
            if "block" in old.column_names:
                redone = pa.array(sorted(b.block_id for b in self.blocks), pa.int64())
                parts.insert(0, old.filter(pc.invert(pc.is_in(old["block"], redone))))
        if not parts:
            return None
        table = pa.concat_tables(parts, promote_options="default")
        return table.sort_by([("block", "ascending")]) if "block" in table.column_names \
            else table

    # --- quality -----------------------------------------------------------------
    def quality(self, metric: str, value: float | None, **where: Any) -> None:
        self.run.quality(metric, value, **where)

    def quality_rows(self, rows: list[dict[str, Any]]) -> None:
        self.run.quality_rows(rows)

    # --- blocks ------------------------------------------------------------------
    def block_context(self, plan: Any) -> BlockContext:
        arrays = {a.name: str(self.ws.array_path(a.name))
                  for a in self.stage.inputs if a.kind == "array"}
        outs = {a.name: str(data_path(self.work.zarr_path, a.name))
                for a in self.stage.outputs if a.kind == "array"}
        return BlockContext(self.params, plan, {**arrays, **outs}, frozenset(outs),
                            str(self.work.parts_dir), self.regional)

    def _declared(self, kind: str, name: str, artifacts) -> None:
        if not any(a.kind == kind and a.name == name for a in artifacts):
            raise WorkspaceError(f"stage {self.stage.name} did not declare {kind} {name!r} "
                                 "(add it to the stage's inputs/outputs)")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
