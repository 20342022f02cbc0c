"""A stage is a declaration, not a script: what it reads and writes, its grid, its functions.

::

    STAGE = Stage(
        name="smooth", layer="L3", params=SmoothParams,
        inputs=(array("aligned"),), outputs=(array("smoothed"),),
        prepare=create_outputs,      # (StageContext) -> plan: global step, creates outputs
        grid=block_grid,             # (StageContext, plan) -> BlockGrid
        process_block=smooth_block,  # (BlockContext, Block) -> quality rows | None
    )

The engine (``pipeline.engine.run``) does everything else, once for every
stage: run identity, the block ledger, provenance, temporary outputs, the swap
(or, for a regional run, the in-place write of the region's blocks), table
assembly, stamps and clean-up. A stage's functions are pure with respect to
the workspace: they read and write only through the contexts they are given.

Contexts:

- ``StageContext`` (driver process): the workspace, the stage's own params,
  the region (None = whole volume), external sources, ``input_array`` /
  ``read_table``, ``create_array`` / ``write_array`` / ``write_table`` for
  outputs, ``quality`` rows, and ``block_table`` (the rows blocks wrote).
- ``BlockContext`` (any worker; picklable): ``params``, ``plan``, ``read`` /
  ``write`` of named arrays (inputs read live, outputs written to this run's
  work copy, every chunk hashed) and ``rows`` for per-block table rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxgraph.params import Params

if TYPE_CHECKING:
    from pipeline.engine.blocks import Block, BlockGrid, Roi
    from pipeline.engine.context import BlockContext, StageContext

LAYERS = ("L1", "L2", "L3", "L4", "L5")
KINDS = ("array", "table", "source", "graph")


@dataclasses.dataclass(frozen=True)
class Artifact:
    """Something a stage reads or writes: a zarr array in ``volumes.zarr``, a Parquet table
    in ``tables/``, an external ``source`` given to the run (e.g. the tile directory), or
    the ``graph`` (Neo4j)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"

    @property
    def key(self) -> str:
        """How provenance names it: ``tiles`` (an array) vs ``table:tiles`` (a table)."""
        return self.name if self.kind == "array" else f"{self.kind}:{self.name}"


def array(name: str) -> Artifact:
    return Artifact("array", name)


def table(name: str) -> Artifact:
    return Artifact("table", name)


def source(name: str) -> Artifact:
    return Artifact("source", name)


def graph(name: str = "graph") -> Artifact:
    return Artifact("graph", name)


Prepare = Callable[["StageContext"], Any]
GridFn = Callable[["StageContext", Any], "BlockGrid"]
ProcessBlock = Callable[["BlockContext", "Block"], "list[dict[str, Any]] | None"]
Finalize = Callable[["StageContext", Any], None]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One pipeline stage (see the module docstring).

    ``params`` is the stage's own section of ``cxgraph.toml`` (``[name]``): only
    what the stage reads, so its identity changes only when those change.
    ``grid``/``process_block`` may be None for a stage with only a global step.
    ``context`` is the read margin (voxels, z, y, x) around each block's write
    region. ``code`` names extra modules in the stage's code fingerprint (the
    modules its functions are defined in, and what they import from
    ``pipeline``, are always in it). ``resources``: e.g. ``{"gpu"}``.
    ``default``: part of a plain ``cxgraph run``. ``model``: the weights file
    whose sha256 joins the identity. ``widen``: in a regional run, the region the
    blocks must cover given the plan (e.g. every block of a body that changed).
    ``regional_params``: see the field.
    """

    name: str
    layer: str
    params: type[Params]
    inputs: tuple[Artifact, ...]
    outputs: tuple[Artifact, ...]
    prepare: Prepare | None = None
    grid: GridFn | None = None
    process_block: ProcessBlock | None = None
    finalize: Finalize | None = None
    context: Callable[[Params], tuple[int, int, int]] | None = None
    code: tuple[str, ...] = ()
    resources: frozenset[str] = frozenset()
    default: bool = True
    model: Callable[[Params], Path | None] | None = None
    widen: Callable[[StageContext, Any, Roi], Roi] | None = None
    description: str = ""
    # parameters that may be set for a region only ([[regional]] in cxgraph.toml): those
    # read per block and nowhere else (not by prepare, finalize or the grid)
    regional_params: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"stage {self.name}: layer {self.layer!r} not in {LAYERS}")
        for a in (*self.inputs, *self.outputs):
            if a.kind not in KINDS:
                raise ValueError(f"stage {self.name}: {a} has unknown kind")
        if (self.grid is None) != (self.process_block is None):
            raise ValueError(f"stage {self.name}: grid and process_block come together")
        if not self.outputs:
            raise ValueError(f"stage {self.name}: declares no outputs")

    @property
    def section(self) -> str:
        """The stage's section of ``cxgraph.toml``."""
        return self.name

    def functions(self) -> list[Callable[..., Any]]:
        return [f for f in (self.prepare, self.grid, self.process_block, self.finalize,
                            self.context, self.model, self.widen) if f is not None]
