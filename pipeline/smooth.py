"""A blockwise Gaussian smoothing stage (denoising before segmentation).

The smallest complete stage: parameters, a pure per-block function, and the
stage wrapper (provenance + blockwise runner). Other stages follow this shape.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import scipy.ndimage as ndi

from cxgraph.params import Params
from cxgraph.provenance import stage_run
from cxgraph.workspace import Workspace
from pipeline.blocks import Block, BlockGrid, Roi, check_chunk_aligned, read, write
from pipeline.runner import run_blockwise


@dataclasses.dataclass(frozen=True)
class SmoothParams(Params):
    source: str = "aligned"  # input array in volumes.zarr
    target: str = "smoothed"  # output array in volumes.zarr
    sigma: tuple[float, float, float] = (0.5, 1.0, 1.0)  # Gaussian sigma, voxels (z, y, x)


def smooth_volume(data: np.ndarray, sigma: tuple[float, float, float]) -> np.ndarray:
    """Gaussian-smooth a (z, y, x) volume, returning the same dtype (rounded for integers)."""
    out = ndi.gaussian_filter(data.astype(np.float32), sigma=sigma, mode="nearest")
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(data.dtype)


def smooth_block(source: str, target: str, sigma: tuple[float, float, float], block: Block) -> dict:
    """Smooth one block: read with context, write the block's own region."""
    import zarr

    src = zarr.open_array(source, mode="r")
    dst = zarr.open_array(target, mode="r+")
    data = read(src, block.read_roi)
    out = smooth_volume(data, sigma)[block.write_roi.relative_to(block.read_roi)]
    write(dst, block.write_roi, out)
    return {"quality": [{"metric": "mean_intensity", "value": float(out.mean())}]}


def context_for(sigma: tuple[float, float, float]) -> tuple[int, int, int]:
    """Read margin that makes blockwise output equal whole-volume output (4 sigma)."""
    return tuple(int(np.ceil(4 * s)) for s in sigma)  # type: ignore[return-value]


def run_smooth(ws: Workspace, params: SmoothParams | None = None, region: Roi | None = None) -> str:
    """Smooth ``params.source`` into ``params.target``; returns the stage run id."""
    params = params or SmoothParams()
    src = ws.array(params.source)
    blocks = ws.config["blocks"]
    check_chunk_aligned(blocks.block_shape, blocks.chunk_shape)
    if not ws.has_array(params.target) or ws.array(params.target).shape != src.shape:
        ws.create_array(params.target, src.shape, src.dtype, blocks.chunk_shape,
                        src.attrs.get("voxel_size", (1, 1, 1)), src.attrs.get("offset", (0, 0, 0)))
    grid = BlockGrid(src.shape, blocks.block_shape, context_for(params.sigma))
    with stage_run(ws, "smooth", "L3", params, inputs={"source": params.source},
                   region=region.as_list() if region else None) as run:
        process = functools.partial(smooth_block, str(ws.zarr_path / params.source),
                                    str(ws.zarr_path / params.target), params.sigma)
        run_blockwise(run, process, grid, region=region)
        run.output("target", params.target)
    return run.stage_run_id
