"""The L4 ``synapse_prediction`` stage: the synapse network, block by block.

Like ``affinities`` (same standardisation, read margin, devices and fixed CPU threads),
with the synapse network (``detect.py``): ``volumes.zarr/synapse_post`` uint8 (Z, Y, X),
255 * probability of being near a postsynaptic site, and ``volumes.zarr/synapse_dir``
int8 (3, Z, Y, X), the direction to the presynaptic partner in quarter voxels
(±31 voxels). L4 quality per block: ``synapse_mask_fraction`` (probability > 0.5).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from cxgraph.errors import ConfigError
from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, Roi, StageContext
from pipeline.segment.affinities_stage import MODELS, predict
from pipeline.segment.training_data import NORMALISE, grey_range, standardise_block
from pipeline.synapses.detect import DIRECTION_SCALE

SHIPPED = MODELS / "synapses-unet.pt"
DIR_UNITS = 4.0  # synapse_dir stores voxels * DIR_UNITS as int8
NODATA_PX = 8  # no synapse predicted within this many px of missing image (y, x)


@dataclasses.dataclass(frozen=True)
class SynapsePredictionParams(Params):
    """L4 synapse prediction."""

    method: str = "unet"  # unet | baseline (non-learned dark-cleft + vesicle-cloud filters)
    model: str = ""  # weights file (.pt); "" = the model shipped with cxgraph
    context: tuple[int, int, int] = (4, 24, 24)  # read margin per block, voxels (z, y, x)
    threads: int = 2  # torch CPU threads per block (fixed: same bytes on every executor)
    normalise: str = "volume"  # grey range of the volume | of each block (local contrast)
    baseline_darkness: float = 1.2  # baseline: local darkness (sd units) of a cleft
    baseline_reach_px: float = 10.0  # baseline: length of the direction to the vesicles

    def __post_init__(self) -> None:
        if self.normalise not in NORMALISE:
            raise ConfigError(f"synapse_prediction.normalise: expected one of {NORMALISE}, got "
                              f"{self.normalise!r}")
        if self.method not in ("unet", "baseline"):
            raise ConfigError(f"synapse_prediction.method: expected 'unet' or 'baseline', "
                              f"got {self.method!r}")


def model_path(params: SynapsePredictionParams) -> Path | None:
    if params.method != "unet":
        return None
    path = Path(params.model) if params.model else SHIPPED
    if not path.exists():
        raise ConfigError(f"synapse_prediction.model: {path} does not exist (train one with "
                          "`cxgraph train synapses`, or leave it empty for the shipped one)")
    return path


def context(params: SynapsePredictionParams) -> tuple[int, int, int]:
    return params.context


@dataclasses.dataclass(frozen=True)
class Plan:
    grey: tuple[float, float]
    model: str | None


def prepare(ctx: StageContext) -> Plan:
    aligned = ctx.input_array("aligned")
    z, y, x = aligned.shape
    grey = grey_range(np.asarray(aligned[:: max(1, z // 16)]))
    chunks = ctx.ws.config["blocks"].chunk_shape
    vs, off = aligned.attrs.get("voxel_size", (1, 1, 1)), aligned.attrs.get("offset", (0, 0, 0))
    ctx.create_array("synapse_post", (z, y, x), np.uint8, chunks, vs, off,
                     attrs={"scale": "uint8 255 = probability 1"})
    ctx.create_array("synapse_dir", (3, z, y, x), np.int8, (3, *chunks), vs, off,
                     attrs={"axes": ["c", "z", "y", "x"],
                            "scale": f"int8 = voxels * {DIR_UNITS} (dz, dy, dx) to pre"})
    path = model_path(ctx.params)
    return Plan(grey, str(path) if path else None)


def grid(ctx: StageContext, plan: Plan) -> BlockGrid:
    return BlockGrid(tuple(ctx.input_array("aligned").shape),
                     ctx.ws.config["blocks"].block_shape, context(ctx.params))


def synapse_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    plan: Plan = ctx.plan
    raw = ctx.read("aligned", block.read_roi)
    # At a volume face the network would see zeros beyond the image and call them
    # clefts: it sees the image mirrored instead, like everywhere else it sees context.
    padded, roi = reflect_to_context(raw, block, context(ctx.params))
    x = standardise_block(padded, plan.grey, ctx.params.normalise)
    if plan.model:
        out = predict(x, plan.model, ctx.params.threads)
        prob, direction = expit(out[0]), out[1:4] * DIRECTION_SCALE
    else:
        prob, direction = baseline(x, ctx.params)
    inner = block.write_roi.relative_to(roi)
    prob, direction = prob[inner], direction[(slice(None), *inner)] * DIR_UNITS
    # No synapse where there is no image (0 = no data), nor within the reach of its edge.
    nodata = padded[inner] == 0
    if nodata.any():
        from scipy import ndimage

        prob = np.where(ndimage.binary_dilation(nodata, np.ones((1, 2 * NODATA_PX + 1,
                                                                2 * NODATA_PX + 1), bool)),
                        0.0, prob)
    ctx.write("synapse_post", block.write_roi, np.rint(prob * 255).astype(np.uint8))
    ctx.write("synapse_dir", block.write_roi,
              np.clip(np.rint(direction), -127, 127).astype(np.int8))
    return [{"metric": "synapse_mask_fraction", "value": float((prob > 0.5).mean())}]


def reflect_to_context(data: np.ndarray, block: Block, margin) -> tuple[np.ndarray, Roi]:
    """``data`` (read over ``block.read_roi``, clipped to the volume) mirrored out to the
    full ``block.write_roi.grow(margin)``, and that box (may reach outside the volume)."""
    want = block.write_roi.grow(margin)
    pads = [(r - w, we - re) for r, w, re, we in zip(block.read_roi.begin, want.begin,
                                                    block.read_roi.end, want.end, strict=True)]
    if not any(a or b for a, b in pads):
        return data, block.read_roi
    mode = "reflect" if all(max(p) < n for p, n in zip(pads, data.shape, strict=True)) \
        else "symmetric"
    return np.pad(data, pads, mode=mode), want


def baseline(x: np.ndarray, params: SynapsePredictionParams) -> tuple[np.ndarray, np.ndarray]:
    """Non-learned: a cleft is much darker than its surroundings (difference of
    Gaussians); the partner lies up the gradient of the density of fine dark dots
    (the vesicle cloud). Returns (probability, direction in voxels)."""
    from scipy import ndimage

    def g(a, s):
        return ndimage.gaussian_filter(a, (0, s, s))

    dark = g(x, 6.0) - g(x, 1.0)  # > 0 where darker than around
    dark = dark / max(float(dark.std()), 1e-6)
    prob = expit((dark - params.baseline_darkness) * 4)
    dots = g((g(x, 2.0) - g(x, 0.7)).clip(min=0) ** 2, 6.0)
    gy, gx = np.gradient(dots, axis=(1, 2))
    norm = np.hypot(gy, gx) + 1e-9
    direction = np.stack([np.zeros_like(x), gy / norm, gx / norm]) * params.baseline_reach_px
    return prob.astype(np.float32), direction.astype(np.float32)
