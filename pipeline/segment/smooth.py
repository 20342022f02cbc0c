"""A blockwise Gaussian smoothing stage (denoising before segmentation).

The smallest complete stage — parameters, a pure per-block function and the
declaration — and the example to copy for a new one. Not part of a default
``cxgraph run``: ``cxgraph run --stages smooth``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage as ndi

from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, Stage, StageContext, array


@dataclasses.dataclass(frozen=True)
class SmoothParams(Params):
    sigma: tuple[float, float, float] = (0.5, 1.0, 1.0)  # Gaussian sigma, voxels (z, y, x)


def smooth_volume(data: np.ndarray, sigma: tuple[float, float, float]) -> np.ndarray:
    """Gaussian-smooth a (z, y, x) volume, returning the same dtype (rounded for integers)."""
    out = ndi.gaussian_filter(data.astype(np.float32), sigma=sigma, mode="nearest")
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(data.dtype)


def context(params: SmoothParams) -> tuple[int, int, int]:
    """Read margin that makes blockwise output equal whole-volume output (4 sigma)."""
    return tuple(int(np.ceil(4 * s)) for s in params.sigma)  # type: ignore[return-value]


def prepare(ctx: StageContext) -> None:
    src = ctx.input_array("aligned")
    ctx.create_array("smoothed", src.shape, src.dtype, None,
                     src.attrs.get("voxel_size", (1, 1, 1)), src.attrs.get("offset", (0, 0, 0)))


def grid(ctx: StageContext, plan: None) -> BlockGrid:
    return BlockGrid(ctx.input_array("aligned").shape, ctx.ws.config["blocks"].block_shape,
                     context(ctx.params))


def smooth_block(ctx: BlockContext, block: Block) -> list[dict]:
    """Smooth one block: read with context, write the block's own region."""
    data = ctx.read("aligned", block.read_roi)
    out = smooth_volume(data, ctx.params.sigma)[block.write_roi.relative_to(block.read_roi)]
    ctx.write("smoothed", block.write_roi, out)
    return [{"metric": "mean_intensity", "value": float(out.mean())}]


STAGE = Stage(
    name="smooth", layer="L3", params=SmoothParams,
    inputs=(array("aligned"),), outputs=(array("smoothed"),),
    prepare=prepare, grid=grid, process_block=smooth_block, context=context, default=False,
    description="Gaussian smoothing of the aligned volume",
)
