"""Pyramid stages: downsampled levels of a volume, so a viewer can show it at any zoom.

``pyramid_stage("aligned", "mean")`` declares stage ``pyramid_aligned``: it reads
``aligned`` (level 0 of the OME-Zarr image ``volumes.zarr/aligned/``) and writes
``aligned/s1`` .. ``aligned/s{LEVELS}`` beside it; the image's ``multiscales``
metadata lists each level as it is put in place. Blocks are the ``[blocks]`` grid
of level 0; each block computes all levels of its region at once (level k's
chunks are the block shape divided by its factor, so blocks write whole chunks
of every level). Quality per block: ``no_data_fraction`` of its level-0 voxels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cxgraph.errors import ConfigError
from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, Roi, Stage, StageContext, array
from pipeline.pyramid.downsample import (
    METHODS,
    Reducer,
    level_factors,
    level_shape,
)

LEVELS = 4  # levels below s0; fixed because a stage declares its outputs up front


@dataclasses.dataclass(frozen=True)
class ImagePyramidParams(Params):
    method: str = "mean"  # mean (no-data voxels left out) | max | mode

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method {self.method!r}: expected one of {list(METHODS)}")


@dataclasses.dataclass(frozen=True)
class LabelPyramidParams(ImagePyramidParams):
    method: str = "mode"  # mode: the most frequent non-zero id of each group


@dataclasses.dataclass(frozen=True)
class Plan:
    source: str
    shape: tuple[int, int, int]
    factors: list[tuple[int, int, int]]
    method: str
    no_data: float | None


def level_names(source: str) -> list[str]:
    return [f"{source}/s{k}" for k in range(1, LEVELS + 1)]


def prepare(ctx: StageContext) -> Plan:
    source = next(a.name for a in ctx.stage.inputs if a.kind == "array")
    src = ctx.input_array(source)
    if src.ndim != 3:
        raise ConfigError(f"{ctx.stage.name}: {source} has shape {src.shape}; pyramids are "
                          "made of (z, y, x) volumes")
    vs = [float(v) for v in src.attrs.get("voxel_size", (1.0, 1.0, 1.0))]
    offset = [float(v) for v in src.attrs.get("offset", (0.0, 0.0, 0.0))]
    block = ctx.ws.config["blocks"].block_shape
    factors = level_factors(vs, block, LEVELS)
    no_data = src.attrs.get("no_data_value")
    for name, f in zip(level_names(source), factors, strict=True):
        ctx.create_array(
            name, level_shape(src.shape, f), src.dtype,
            chunks=tuple(b // fi for b, fi in zip(block, f, strict=True)),
            voxel_size=[v * fi for v, fi in zip(vs, f, strict=True)],
            offset=offset,  # every level begins where level 0 does (voxel corners)
            attrs={"downsampling": ctx.params.method, "downsampling_factor": list(f),
                   **({"no_data_value": no_data} if no_data is not None else {})},
            fill_value=src.fill_value)
    return Plan(source, tuple(src.shape), factors, ctx.params.method,  # type: ignore[arg-type]
                None if no_data is None else float(no_data))


def grid(ctx: StageContext, plan: Plan) -> BlockGrid:
    return BlockGrid(plan.shape, ctx.ws.config["blocks"].block_shape)


def pyramid_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    """All levels of one block's region, each from the one above it."""
    plan: Plan = ctx.plan
    data = ctx.read(plan.source, block.write_roi)
    reducer = Reducer(data, plan.method, plan.no_data)
    previous = (1, 1, 1)
    for name, f in zip(level_names(plan.source), plan.factors, strict=True):
        level = reducer.step(tuple(a // b for a, b in zip(f, previous, strict=True)))
        begin = tuple(b // fi for b, fi in zip(block.write_roi.begin, f, strict=True))
        ctx.write(name, Roi(begin, tuple(b + s for b, s in zip(begin, level.shape,  # type: ignore[arg-type]
                                                                   strict=True))), level)
        previous = f
    empty = data == (0 if plan.no_data is None else plan.no_data)
    return [{"metric": "no_data_fraction", "value": float(empty.mean())}]


def pyramid_stage(source: str, method: str, layer: str, default: bool = True) -> Stage:
    """The pyramid stage of volume ``source`` (``mean`` for EM, ``mode`` for labels)."""
    return Stage(
        name=f"pyramid_{source}", layer=layer,
        params=LabelPyramidParams if method == "mode" else ImagePyramidParams,
        inputs=(array(source),), outputs=tuple(array(n) for n in level_names(source)),
        prepare=prepare, grid=grid, process_block=pyramid_block, default=default,
        description=f"{LEVELS}-level OME-Zarr pyramid of {source} ({method}) for viewers",
    )
