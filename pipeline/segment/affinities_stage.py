"""The L3 ``affinities`` stage: the U-Net's nearest-neighbour affinities, block by block.

Each block reads ``aligned`` over its write region plus ``context`` (voxels), is
standardised with one grey range for the whole volume (measured once in
``prepare``, from a strided sample), predicted with "same" padding and cropped
to its write region — so the border effects fall in the margin and blocks agree
where they meet. CUDA when present (mixed precision), else the CPU with a fixed
number of threads (the same in every executor, so serial and Dask give the same
bytes). The device is recorded in the stage run.

``method = "baseline"`` replaces the network by a non-learned boundary filter (a
Gaussian-smoothed grey level, dark = membrane) — the benchmark's answer to "what
does the network buy".

Output ``volumes.zarr/affinities`` uint8 (3, Z, Y, X): 255 * affinity of each voxel
to its -z, -y, -x neighbour. L3 quality per block: ``affinity_confidence`` (mean
|2a - 1|), ``affinity_ambiguous_fraction`` (0.2 < a < 0.8), ``boundary_fraction``
(xy affinity < 0.5).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from cxgraph.errors import ConfigError
from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, StageContext
from pipeline.segment.training_data import NORMALISE, grey_range, standardise_block

TTA = (1, 4, 8)
MODELS = Path(__file__).resolve().parent / "models"
SHIPPED = MODELS / "affinities-unet.pt"


@dataclasses.dataclass(frozen=True)
class AffinityParams(Params):
    """L3 affinities."""

    method: str = "unet"  # unet | baseline (non-learned boundary filter)
    model: str = ""  # weights file (.pt); "" = the model shipped with cxgraph
    context: tuple[int, int, int] = (4, 24, 24)  # read margin per block, voxels (z, y, x)
    threads: int = 2  # torch CPU threads per block (fixed: same bytes on every executor)
    normalise: str = "volume"  # grey range of the volume | of each block (local contrast)
    tta: int = 1  # test-time augmentation: 1 (off), 4 (y/x flips) or 8 (flips and y<->x)
    baseline_sigma_px: float = 1.5  # baseline: Gaussian sigma in y/x, px
    baseline_width: float = 0.25  # baseline: softness of the grey -> inside step, in sd

    def __post_init__(self) -> None:
        if self.normalise not in NORMALISE:
            raise ConfigError(f"affinities.normalise: expected one of {NORMALISE}, got "
                              f"{self.normalise!r}")
        if self.tta not in TTA:
            raise ConfigError(f"affinities.tta: expected one of {TTA}, got {self.tta!r}")
        if self.method not in ("unet", "baseline"):
            raise ConfigError(f"affinities.method: expected 'unet' or 'baseline', got "
                              f"{self.method!r}")


def model_path(params: AffinityParams) -> Path | None:
    if params.method != "unet":
        return None
    path = Path(params.model) if params.model else SHIPPED
    if not path.exists():
        raise ConfigError(f"affinities.model: {path} does not exist (train one with "
                          "`cxgraph train segment`, or leave it empty for the shipped model)")
    return path


def context(params: AffinityParams) -> tuple[int, int, int]:
    return params.context


@dataclasses.dataclass(frozen=True)
class Plan:
    grey: tuple[float, float]  # the volume's 1st/99th grey percentile (data voxels)
    model: str | None


def prepare(ctx: StageContext) -> Plan:
    aligned = ctx.input_array("aligned")
    z, y, x = aligned.shape
    step = max(1, z // 16)  # a sample of sections is enough for two percentiles
    grey = grey_range(np.asarray(aligned[::step]))
    chunks = ctx.ws.config["blocks"].chunk_shape
    ctx.create_array("affinities", (3, z, y, x), np.uint8, (3, *chunks),
                     aligned.attrs.get("voxel_size", (1, 1, 1)),
                     aligned.attrs.get("offset", (0, 0, 0)),
                     attrs={"axes": ["c", "z", "y", "x"], "offsets": [[-1, 0, 0], [0, -1, 0],
                                                                      [0, 0, -1]],
                            "scale": "uint8 255 = affinity 1"})
    ctx.quality("grey_low", grey[0])
    ctx.quality("grey_high", grey[1])
    path = model_path(ctx.params)
    return Plan(grey, str(path) if path else None)


def grid(ctx: StageContext, plan: Plan) -> BlockGrid:
    return BlockGrid(tuple(ctx.input_array("aligned").shape),
                     ctx.ws.config["blocks"].block_shape, context(ctx.params))


_models: dict[str, Any] = {}


def _net(path: str):
    if path not in _models:
        import torch

        from pipeline.segment.train import load_model
        from pipeline.segment.unet import device

        _models[path] = load_model(Path(path)).to(device(),
                                                  memory_format=torch.channels_last_3d)
    return _models[path]


def predict(x: np.ndarray, path: str, threads: int) -> np.ndarray:
    """(C, Z, Y, X) float32 raw network outputs (logits) of a standardised (Z, Y, X)
    volume, for any of the pipeline's U-Nets."""
    import torch

    from pipeline.segment.unet import device

    torch.set_num_threads(threads)
    net = _net(path)
    div = net.config.divisor
    pads = [(0, (-s) % d) for s, d in zip(x.shape, div, strict=True)]
    xp = np.pad(x, pads, mode="reflect") if any(p[1] for p in pads) else x
    dev = device()
    with torch.no_grad(), torch.autocast(dev.type, enabled=dev.type == "cuda"):
        inp = torch.from_numpy(np.ascontiguousarray(xp))[None, None].to(dev)
        out = net(inp.to(memory_format=torch.channels_last_3d))[0].float().cpu().numpy()
    return out[:, : x.shape[0], : x.shape[1], : x.shape[2]]


def predict_affinities(x: np.ndarray, path: str, threads: int, tta: int = 1) -> np.ndarray:
    """(3, Z, Y, X) nearest-neighbour affinities of a standardised volume, averaged over
    ``tta`` views (flips in y and x, and with 8 the y<->x transpose): the averaging
    cancels part of the prediction's noise where the membranes are faint."""
    views = [(t, fy, fx) for t in (False, True) for fy in (False, True)
             for fx in (False, True)][:tta]
    total = np.zeros((3, *x.shape), np.float64)
    for transpose, flip_y, flip_x in views:
        v = x.transpose(0, 2, 1) if transpose else x
        flips = [a for a, f in ((1, flip_y), (2, flip_x)) if f]
        v = np.flip(v, flips) if flips else v
        p = expit(predict(np.ascontiguousarray(v), path, threads)[:3])
        for a in flips:  # a flipped -a affinity is the +a one: flip back, shift by one
            p = np.flip(p, a + 1).copy()
            edge = [slice(None)] * 4
            edge[0], edge[a + 1] = a, slice(1, None)
            src = list(edge)
            src[a + 1] = slice(None, -1)
            p[tuple(edge)] = p[tuple(src)].copy()  # p[a][0] (to outside) keeps its own view
        if transpose:
            p = p[[0, 2, 1]].transpose(0, 1, 3, 2)
        total += p
    return (total / len(views)).astype(np.float32)


def baseline(x: np.ndarray, params: AffinityParams) -> np.ndarray:
    """Non-learned affinities: inside probability from smoothed grey (dark = membrane),
    an edge's affinity the smaller of its two voxels'."""
    from scipy import ndimage

    s = ndimage.gaussian_filter(x, (0, params.baseline_sigma_px, params.baseline_sigma_px))
    inside = expit((s - np.median(s)) / params.baseline_width)
    out = np.empty((3, *x.shape), np.float32)
    for k in range(3):
        prev = np.roll(inside, 1, axis=k)
        out[k] = np.minimum(inside, prev)
    return out


def affinities_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    plan: Plan = ctx.plan
    params: AffinityParams = ctx.params
    x = standardise_block(ctx.read("aligned", block.read_roi), plan.grey, ctx.params.normalise)
    affs = (predict_affinities(x, plan.model, params.threads, params.tta) if plan.model
            else baseline(x, params))
    affs = affs[(slice(None), *block.write_roi.relative_to(block.read_roi))]
    ctx.write("affinities", block.write_roi, np.rint(affs * 255).astype(np.uint8))
    xy = affs[1:]
    return [
        {"metric": "affinity_confidence", "value": float(np.abs(2 * affs - 1).mean())},
        {"metric": "affinity_ambiguous_fraction",
         "value": float(((xy > 0.2) & (xy < 0.8)).mean())},
        {"metric": "boundary_fraction", "value": float((xy.mean(axis=0) < 0.5).mean())},
    ]
