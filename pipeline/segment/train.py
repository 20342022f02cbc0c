"""Training the pipeline's networks, reproducibly, and recording them (``cxgraph train``).

``train(volumes, validation, out, config, task=...)`` trains a 3D U-Net for a
``Task``: ``AFFINITIES`` here (``cxgraph train segment``), ``pipeline.synapses.
train.SYNAPSES`` for synapses.

Data: phantom volumes run through L1/L2 (``training_data.py``), or a user's own
annotated volume to fine-tune on. Every step draws a random crop and augments it
with what real microscopes and upstream stages do to images, so the network does
not learn the phantom's quirks:

- intensity: contrast x U(0.5, 1.5), brightness ± 0.3 sd, gamma U(0.6, 1.6);
- noise: Gaussian, sd U(0, 0.3) of the standardised grey; blur sigma U(0, 1.2) px;
- whole missing sections (set to 0, the pipeline's "no data") and damaged ones
  (a dark band), p = 0.05 per section;
- small misalignment: a section shifted by up to ±3 px (input only);
- uneven staining (opt-in, ``--uneven-staining``; p = 0.4): contrast compressed toward
  the bright resin level by a factor ramping from U(0.1, 0.6) across the crop, the pixel
  noise put back to its level (weak stain is lighter and flatter, detector noise is not);
- elastic deformation of input and truth together (a smooth random field, ≤ 3 px);
- flips in z, y, x and a y/x transpose.

Affinities: binary cross-entropy on every affinity channel, each voxel weighted so
that boundary (affinity 0) and inside (1) weigh the same per crop, masked where the
neighbour lies outside the crop. Validation: the same loss on fixed crops of a
held-out volume every ``val_every`` steps (the curve goes into the record).

Output: ``<out>.pt`` (state dict + config) and ``<out>.json`` (model id = sha256 of
the .pt, architecture, training config, data digest, seeds, loss curve, timing,
validation scores), and a row in the provenance ``models`` table of the workspace.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from tqdm.auto import tqdm

from pipeline.segment.affinity import affinities
from pipeline.segment.training_data import Volume, standardise
from pipeline.segment.unet import AFFINITY_OFFSETS, UNet, UNetConfig, device

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    steps: int = 3000
    batch: int = 1
    patch: tuple[int, int, int] = (16, 96, 96)  # voxels (z, y, x); multiple of the net's divisor
    lr: float = 2e-3
    weight_decay: float = 1e-5
    val_every: int = 250
    threads: int = 2  # torch CPU threads
    loss_margin: tuple[int, int, int] = (2, 8, 8)  # crop border excluded from the loss
    uneven_staining: bool = False  # the staining-gradient augmentation (see the docstring)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


# --- augmentation ---------------------------------------------------------------------


def crop(raw_vol: np.ndarray, truths: tuple[np.ndarray, ...], patch: tuple[int, int, int],
         rng: np.random.Generator, pad: tuple[int, int, int], around: np.ndarray | None = None
         ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """A random crop of patch + 2 * pad (room for elastic/shift) of the raw volume and of
    its label-like truth volumes (same shape); with ``around`` (z, y, x), one that holds
    that point somewhere in its middle half."""
    size = [p + 2 * q for p, q in zip(patch, pad, strict=True)]
    if around is None:
        starts = [int(rng.integers(0, max(1, s - z + 1)))
                  for s, z in zip(raw_vol.shape, size, strict=True)]
    else:
        starts = [int(np.clip(round(c) - z // 2 + int(rng.integers(-(z // 4), z // 4 + 1)),
                              0, max(0, s - z)))
                  for c, s, z in zip(around, raw_vol.shape, size, strict=True)]
    sl = tuple(slice(a, a + z) for a, z in zip(starts, size, strict=True))
    raw, out = raw_vol[sl], tuple(t[sl] for t in truths)
    if raw.shape != tuple(size):  # a volume smaller than the crop: pad by reflection
        widths = [(0, z - s) for s, z in zip(raw.shape, size, strict=True)]
        raw = np.pad(raw, widths, mode="reflect")
        out = tuple(np.pad(t, widths, mode="reflect") for t in out)
    return raw, out


def _elastic(x: np.ndarray, truths: tuple[np.ndarray, ...], rng: np.random.Generator,
             amp: float = 3.0, sigma: float = 12.0) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The same smooth in-plane deformation (≤ amp px) of each section of x and the truths
    (nearest neighbour: they are labels)."""
    _, h, w = x.shape
    dy = ndimage.gaussian_filter(rng.normal(size=(h, w)), sigma)
    dx = ndimage.gaussian_filter(rng.normal(size=(h, w)), sigma)
    scale = amp / max(float(np.abs(np.stack([dy, dx])).max()), 1e-6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = [yy + dy * scale, xx + dx * scale]
    out_x = np.stack([ndimage.map_coordinates(s, coords, order=1, mode="reflect") for s in x])
    out_t = tuple(np.stack([ndimage.map_coordinates(s, coords, order=0, mode="reflect")
                            for s in t]) for t in truths)
    return out_x.astype(np.float32), out_t


def _uneven_staining(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast toward the bright level by a factor ramping along a random in-plane
    direction (what a staining gradient does to the standardised grey), then white noise
    of sd * sqrt(1 - f^2) so the noise level is that of the unscaled image."""
    from pipeline.phantom.appearance import immerkaer_noise

    _, h, w = x.shape
    lo = rng.uniform(0.1, 0.6)
    hi = min(1.0, lo + rng.uniform(0.0, 0.3))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = yy * np.sin(angle) + xx * np.cos(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    f = (lo + (hi - lo) * t).astype(np.float32)[None]
    bright = float(np.percentile(x, 99))
    sd = float(np.median([immerkaer_noise(s) for s in x]))
    out = bright + (x - bright) * f
    return (out + rng.normal(0, 1, x.shape).astype(np.float32) * sd * np.sqrt(1 - f ** 2)
            ).astype(np.float32)


def augment(raw: np.ndarray, truths: tuple[np.ndarray, ...], patch: tuple[int, int, int],
            pad: tuple[int, int, int], rng: np.random.Generator, uneven_staining: bool = False
            ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """(standardised input (z, y, x) float32, truths) of exactly ``patch`` size."""
    x = standardise(raw)
    nodata = raw == 0
    if rng.random() < 0.5:
        x, truths = _elastic(x, truths, rng)
    # misalign one section (input only: the truth does not move)
    if rng.random() < 0.3:
        z = int(rng.integers(0, x.shape[0]))
        x[z] = ndimage.shift(x[z], rng.uniform(-3, 3, 2), order=1, mode="reflect")
    sl = tuple(slice(q, q + p) for p, q in zip(patch, pad, strict=True))
    x, nodata = x[sl].copy(), nodata[sl]
    truths = tuple(t[sl] for t in truths)
    if uneven_staining and rng.random() < 0.4:
        x = _uneven_staining(x, rng)
    # intensity
    x = np.sign(x) * np.abs(x) ** rng.uniform(0.6, 1.6) if rng.random() < 0.5 else x
    x = x * rng.uniform(0.5, 1.5) + rng.uniform(-0.3, 0.3)
    if rng.random() < 0.5:
        x = ndimage.gaussian_filter(x, (0, *(2 * [rng.uniform(0, 1.2)])))
    x = x + rng.normal(0, rng.uniform(0, 0.3), x.shape).astype(np.float32)
    x[nodata] = 0.0
    for z in range(x.shape[0]):
        r = rng.random()
        if r < 0.05:
            x[z] = 0.0  # missing section
        elif r < 0.08:  # damaged: a dark fold across the section
            y0 = int(rng.integers(0, x.shape[1]))
            x[z, max(0, y0 - 3): y0 + 3] = -2.0
    # flips and transpose
    for axis in range(3):
        if rng.random() < 0.5:
            x, truths = np.flip(x, axis), tuple(np.flip(t, axis) for t in truths)
    if rng.random() < 0.5:
        x, truths = x.transpose(0, 2, 1), tuple(t.transpose(0, 2, 1) for t in truths)
    return np.ascontiguousarray(x, np.float32), tuple(np.ascontiguousarray(t) for t in truths)


def margin_mask(shape: tuple[int, ...], margin: tuple[int, int, int]) -> np.ndarray:
    """1 inside the crop, 0 within ``margin`` of its faces (no loss where context is cut)."""
    keep = np.zeros(shape, np.float32)
    keep[tuple(slice(m, s - m) for m, s in zip(margin, shape, strict=True))] = 1.0
    return keep


def balanced(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Weights that make the 1s and the 0s of a binary target weigh the same (within mask)."""
    pos = float((target * mask).sum())
    neg = float(((1 - target) * mask).sum())
    total = pos + neg
    wp = total / (2 * pos) if pos else 0.0
    wn = total / (2 * neg) if neg else 0.0
    return mask * np.where(target > 0.5, wp, wn).astype(np.float32)


def bce(logits, y, w):
    return (torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
            * w).sum() / w.sum().clamp(min=1.0)


@dataclasses.dataclass(frozen=True)
class Task:
    """What a network learns: which truth volumes it needs, their targets, the loss."""

    name: str  # "affinities", "synapses"
    out_channels: int
    truths: Callable[[Volume], tuple[np.ndarray, ...]]
    targets: Callable[[tuple[np.ndarray, ...], tuple[int, int, int]],
                      tuple[np.ndarray, np.ndarray]]
    loss: Callable[..., torch.Tensor]
    # points (n, 3) of rare targets: half the crops are centred near one of them, so a
    # sparse target (synapses: ~1e-4 of the voxels) is in the batch at all
    focus: Callable[[Volume], np.ndarray] | None = None


def _affinity_targets(truths: tuple[np.ndarray, ...], margin: tuple[int, int, int]
                      ) -> tuple[np.ndarray, np.ndarray]:
    (lab,) = truths
    affs, mask = affinities(lab, AFFINITY_OFFSETS)
    mask = mask * margin_mask(lab.shape, margin)
    w = np.stack([balanced(affs[c], mask[c]) for c in range(affs.shape[0])])
    return affs, w


AFFINITIES = Task("affinities", len(AFFINITY_OFFSETS), lambda v: (v.labels,),
                  _affinity_targets, bce)


# --- training -------------------------------------------------------------------------


def _batch(task: Task, volumes: list[Volume], cfg: TrainConfig, rng: np.random.Generator):
    pad = (2, 8, 8)
    xs, ys, ws = [], [], []
    for _ in range(cfg.batch):
        vol = volumes[int(rng.integers(0, len(volumes)))]
        points = task.focus(vol) if task.focus is not None else np.zeros((0, 3))
        around = (points[int(rng.integers(0, len(points)))]
                  if len(points) and rng.random() < 0.5 else None)
        raw, truths = crop(vol.raw, task.truths(vol), cfg.patch, rng, pad, around)
        x, truths = augment(raw, truths, cfg.patch, pad, rng, cfg.uneven_staining)
        y, w = task.targets(truths, cfg.loss_margin)
        xs.append(x[None])
        ys.append(y)
        ws.append(w)
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)),
            torch.from_numpy(np.stack(ws)))


def _val_crops(task: Task, volume: Volume, cfg: TrainConfig, n: int = 4):
    rng = np.random.default_rng(12345)
    out = []
    points = task.focus(volume) if task.focus is not None else np.zeros((0, 3))
    for k in range(n):  # as in training: half the crops around a rare target
        around = points[k % len(points)] if len(points) and k % 2 == 0 else None
        raw, truths = crop(volume.raw, task.truths(volume), cfg.patch, rng, (0, 0, 0), around)
        y, w = task.targets(truths, cfg.loss_margin)
        out.append((torch.from_numpy(standardise(raw)[None, None]), torch.from_numpy(y[None]),
                    torch.from_numpy(w[None])))
    return out


def train(volumes: list[Volume], validation: Volume, out: Path, cfg: TrainConfig,
          net_config: UNetConfig | None = None, init: Path | None = None,
          task: Task = AFFINITIES) -> dict[str, Any]:
    """Train (or fine-tune from ``init``), save ``out``.pt/.json; return the record."""
    net_config = net_config or UNetConfig(out_channels=task.out_channels)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    dev = device()
    net = UNet(net_config)
    if init is not None:
        net.load_state_dict(load_state(init)[0])
    net.to(dev, memory_format=torch.channels_last_3d)  # faster 3D convolutions on CPU
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps,
                                                pct_start=min(0.3, max(0.05, 5 / cfg.steps)))
    val = _val_crops(task, validation, cfg)
    curve: list[dict[str, float]] = []
    t0 = time.perf_counter()
    running = []
    for step in tqdm(range(1, cfg.steps + 1), desc=f"train {task.name}", unit="step"):
        net.train()
        x, y, w = (t.to(dev) for t in _batch(task, volumes, cfg, rng))
        x = x.to(memory_format=torch.channels_last_3d)
        with torch.autocast(dev.type, enabled=dev.type == "cuda"):
            loss = task.loss(net(x), y, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if step % cfg.val_every == 0 or step == cfg.steps:
            net.eval()
            with torch.no_grad():
                vl = float(np.mean([float(task.loss(net(a.to(dev)), b.to(dev), c.to(dev)))
                                    for a, b, c in val]))
            curve.append({"step": step, "train_loss": float(np.mean(running)),
                          "val_loss": vl, "seconds": round(time.perf_counter() - t0, 1)})
            running = []
            log.info("step %d: train %.4f val %.4f", step, curve[-1]["train_loss"], vl)
    record = {
        "architecture": f"UNet3D-{task.name}", "config": net_config.to_dict(),
        "offsets": [list(o) for o in AFFINITY_OFFSETS] if task is AFFINITIES else None,
        "training": cfg.to_dict(),
        "data": {v.name: v.digest() for v in volumes}, "validation_data": validation.name,
        # the weights' id as well as their path: a fine-tune may overwrite the file it began from
        "init": {"path": str(init), "model_id": hashlib.sha256(Path(init).read_bytes()).hexdigest()}
        if init else None, "curve": curve, "device": str(dev),
        "train_seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
    }
    save(net, out, record)
    return json.loads(out.with_suffix(".json").read_text())


def save(net: UNet, out: Path, record: dict[str, Any]) -> None:
    out = Path(out).with_suffix(".pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "config": net.config.to_dict()}, out)
    record = {**record, "model_id": hashlib.sha256(out.read_bytes()).hexdigest()}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))


def load_state(path: Path) -> tuple[dict, UNetConfig]:
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    return blob["state_dict"], UNetConfig.from_dict(blob["config"])


def load_model(path: Path) -> UNet:
    state, config = load_state(path)
    net = UNet(config)
    net.load_state_dict(state)
    return net.eval()
