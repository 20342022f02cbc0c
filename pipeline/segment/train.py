"""``cxgraph train segment``: train the affinity U-Net, reproducibly, and record it.

Data: phantom volumes run through L1/L2 (``training_data.py``), or a user's own
annotated volume to fine-tune on. Every step draws a random crop and augments it
with what real microscopes and upstream stages do to images, so the network does
not learn the phantom's quirks:

- intensity: contrast x U(0.5, 1.5), brightness ± 0.3 sd, gamma U(0.6, 1.6);
- noise: Gaussian, sd U(0, 0.3) of the standardised grey; blur sigma U(0, 1.2) px;
- whole missing sections (set to 0, the pipeline's "no data") and damaged ones
  (a dark band), p = 0.05 per section;
- small misalignment: a section shifted by up to ±3 px (input only);
- elastic deformation of input and labels together (a smooth random field, ≤ 3 px);
- flips in z, y, x and a y/x transpose.

Loss: binary cross-entropy on every affinity channel, each voxel weighted so that
boundary (affinity 0) and inside (1) weigh the same per crop, masked where the
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

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


# --- augmentation ---------------------------------------------------------------------


def _crop(vol: Volume, patch: tuple[int, int, int], rng: np.random.Generator,
          pad: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A random crop of patch + 2 * pad (pad room for elastic/shift), as (raw, labels)."""
    size = [p + 2 * q for p, q in zip(patch, pad, strict=True)]
    starts = [int(rng.integers(0, max(1, s - z + 1))) for s, z in zip(vol.raw.shape, size,
                                                                        strict=True)]
    sl = tuple(slice(a, a + z) for a, z in zip(starts, size, strict=True))
    raw, lab = vol.raw[sl], vol.labels[sl]
    if raw.shape != tuple(size):  # a volume smaller than the crop: pad by reflection
        widths = [(0, z - s) for s, z in zip(raw.shape, size, strict=True)]
        raw, lab = np.pad(raw, widths, mode="reflect"), np.pad(lab, widths, mode="reflect")
    return raw, lab


def _elastic(x: np.ndarray, lab: np.ndarray, rng: np.random.Generator, amp: float = 3.0,
             sigma: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """The same smooth in-plane deformation (≤ amp px) of each section of x and labels."""
    _, h, w = x.shape
    dy = ndimage.gaussian_filter(rng.normal(size=(h, w)), sigma)
    dx = ndimage.gaussian_filter(rng.normal(size=(h, w)), sigma)
    scale = amp / max(float(np.abs(np.stack([dy, dx])).max()), 1e-6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = [yy + dy * scale, xx + dx * scale]
    out_x = np.stack([ndimage.map_coordinates(s, coords, order=1, mode="reflect") for s in x])
    out_l = np.stack([ndimage.map_coordinates(s, coords, order=0, mode="reflect") for s in lab])
    return out_x.astype(np.float32), out_l


def augment(raw: np.ndarray, lab: np.ndarray, patch: tuple[int, int, int],
            pad: tuple[int, int, int], rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """(standardised input (z, y, x) float32, labels) of exactly ``patch`` size."""
    x = standardise(raw)
    nodata = raw == 0
    if rng.random() < 0.5:
        x, lab = _elastic(x, lab, rng)
    # misalign one section (input only: the truth does not move)
    if rng.random() < 0.3:
        z = int(rng.integers(0, x.shape[0]))
        x[z] = ndimage.shift(x[z], rng.uniform(-3, 3, 2), order=1, mode="reflect")
    sl = tuple(slice(q, q + p) for p, q in zip(patch, pad, strict=True))
    x, lab, nodata = x[sl].copy(), lab[sl].copy(), nodata[sl]
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
            x, lab = np.flip(x, axis), np.flip(lab, axis)
    if rng.random() < 0.5:
        x, lab = x.transpose(0, 2, 1), lab.transpose(0, 2, 1)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(lab)


def _targets(lab: np.ndarray, margin: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    affs, mask = affinities(lab, AFFINITY_OFFSETS)
    if any(margin):
        keep = np.zeros(lab.shape, np.float32)
        keep[tuple(slice(m, s - m) for m, s in zip(margin, lab.shape, strict=True))] = 1.0
        mask = mask * keep
    # balance boundary and inside per channel
    w = np.empty_like(mask)
    for c in range(affs.shape[0]):
        pos = float((affs[c] * mask[c]).sum())
        neg = float(((1 - affs[c]) * mask[c]).sum())
        total = pos + neg
        wp = total / (2 * pos) if pos else 0.0
        wn = total / (2 * neg) if neg else 0.0
        w[c] = mask[c] * np.where(affs[c] > 0.5, wp, wn)
    return affs, w


# --- training -------------------------------------------------------------------------


def _batch(volumes: list[Volume], cfg: TrainConfig, rng: np.random.Generator):
    pad = (2, 8, 8)
    xs, ys, ws = [], [], []
    for _ in range(cfg.batch):
        vol = volumes[int(rng.integers(0, len(volumes)))]
        raw, lab = _crop(vol, cfg.patch, rng, pad)
        x, lab = augment(raw, lab, cfg.patch, pad, rng)
        y, w = _targets(lab, cfg.loss_margin)
        xs.append(x[None])
        ys.append(y)
        ws.append(w)
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)),
            torch.from_numpy(np.stack(ws)))


def _val_crops(volume: Volume, cfg: TrainConfig, n: int = 4):
    rng = np.random.default_rng(12345)
    out = []
    for _ in range(n):
        raw, lab = _crop(volume, cfg.patch, rng, (0, 0, 0))
        y, w = _targets(lab, cfg.loss_margin)
        out.append((torch.from_numpy(standardise(raw)[None, None]), torch.from_numpy(y[None]),
                    torch.from_numpy(w[None])))
    return out


def _loss(logits, y, w):
    return (torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
            * w).sum() / w.sum().clamp(min=1.0)


def train(volumes: list[Volume], validation: Volume, out: Path, cfg: TrainConfig,
          net_config: UNetConfig = UNetConfig(),  # noqa: B008 - frozen default
          init: Path | None = None) -> dict[str, Any]:
    """Train (or fine-tune from ``init``), save ``out``.pt/.json; return the record."""
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
    val = _val_crops(validation, cfg)
    curve: list[dict[str, float]] = []
    t0 = time.perf_counter()
    running = []
    for step in tqdm(range(1, cfg.steps + 1), desc="train segment", unit="step"):
        net.train()
        x, y, w = (t.to(dev) for t in _batch(volumes, cfg, rng))
        x = x.to(memory_format=torch.channels_last_3d)
        with torch.autocast(dev.type, enabled=dev.type == "cuda"):
            loss = _loss(net(x), y, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if step % cfg.val_every == 0 or step == cfg.steps:
            net.eval()
            with torch.no_grad():
                vl = float(np.mean([float(_loss(net(a.to(dev)), b.to(dev), c.to(dev)))
                                    for a, b, c in val]))
            curve.append({"step": step, "train_loss": float(np.mean(running)),
                          "val_loss": vl, "seconds": round(time.perf_counter() - t0, 1)})
            running = []
            log.info("step %d: train %.4f val %.4f", step, curve[-1]["train_loss"], vl)
    record = {
        "architecture": "UNet3D-affinities", "config": net_config.to_dict(),
        "offsets": [list(o) for o in AFFINITY_OFFSETS], "training": cfg.to_dict(),
        "data": {v.name: v.digest() for v in volumes}, "validation_data": validation.name,
        "init": str(init) if init else None, "curve": curve, "device": str(dev),
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
