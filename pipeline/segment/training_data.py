"""Training volumes for the affinity network: what the network will see, with its truth.

A training volume is a phantom (``pipeline.phantom``) run through the real L1/L2
stages — tiles, flat field, stitching, registration — so the network learns on
the ``aligned`` volume exactly as inference reads it (tile seams, normalisation,
missing sections as 0), beside the phantom's true labels moved onto each aligned
section (phase correlation against the clean EM: the registration leaves a free
constant and sub-pixel to pixel errors per section, and a truth 2 px off its image
teaches blurred boundaries). Or a user's own annotated volume (``--raw/--labels``).

``Volume.raw`` is uint8 (Z, Y, X), 0 = no data; ``Volume.labels`` uint64, 0 =
extracellular space / unlabelled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Volume:
    name: str
    raw: np.ndarray  # uint8 (z, y, x), 0 = no data
    labels: np.ndarray  # uint64 (z, y, x), 0 = background
    synapses: Any = None  # the true synapses (a table: pre/post z, y, x in this frame)
    clefts: np.ndarray | None = None  # synapse id of each rendered cleft/PSD voxel, if known
    mito: np.ndarray | None = None  # mitochondria (non-zero), if known: dark look-alikes

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.raw).tobytes())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()


def standardise(raw: np.ndarray, low_high: tuple[float, float] | None = None) -> np.ndarray:
    """float32 grey values with the volume's 1st/99th percentile of data voxels at -1/+1;
    no-data voxels (0) set to 0. The same function serves training and inference."""
    lo, hi = low_high if low_high is not None else grey_range(raw)
    x = (raw.astype(np.float32) - (lo + hi) / 2) / max((hi - lo) / 2, 1e-3)
    x[raw == 0] = 0.0
    return x


NORMALISE = ("volume", "block")


def standardise_block(raw: np.ndarray, volume_grey: tuple[float, float], mode: str) -> np.ndarray:
    """``standardise`` with the volume's grey range, or (``mode = "block"``) the block's own:
    local contrast normalisation, for a region whose staining differs from the rest."""
    return standardise(raw, volume_grey if mode == "volume" else grey_range(raw))


def grey_range(raw: np.ndarray, max_samples: int = 2_000_000) -> tuple[float, float]:
    """1st and 99th percentile of the data voxels (raw > 0), from a strided sample."""
    flat = raw.reshape(-1)
    step = max(1, flat.size // max_samples)
    sample = flat[::step]
    sample = sample[sample > 0]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [1, 99])
    return float(lo), float(hi)


def phantom_volume(cache: Path, seed: int, shape: tuple[int, int, int],
                   faults: tuple[str, ...] = (), preset: dict | None = None,
                   morphology: str = "tem") -> Volume:
    """Render phantom ``seed`` (``morphology``: a preset of ``pipeline.phantom.params``,
    ``preset``: parameters over it), run ingest/stitch/align on it (cached in ``cache``),
    and return (aligned, true labels)."""
    from cxgraph.config import Config
    from cxgraph.workspace import Workspace
    from pipeline import registry
    from pipeline.phantom import render_phantom
    from pipeline.phantom.params import preset_params

    spec = (seed, shape, faults, sorted((preset or {}).items()))
    key = hashlib.sha256(repr(spec if morphology == "tem" else (*spec, morphology))
                         .encode()).hexdigest()[:12]
    root = Path(cache) / f"phantom-{seed}-{key}"
    ws_dir, in_dir = root / "ws", root / "in"
    if not (ws_dir / "volumes.zarr" / "aligned" / "zarr.json").exists():
        log.info("training volume: phantom seed %d %s -> %s", seed, shape, root)
        render_phantom(in_dir, preset_params(morphology, seed=seed, shape=shape, faults=faults,
                                             **(preset or {})))
        ws = Workspace.create(ws_dir, Config())
        registry.run_pipeline(ws, {"tile_dir": in_dir}, until="align")
    from pipeline.segment.evaluate import labels_in_aligned_frame, section_offsets

    ws = Workspace.open(ws_dir)
    raw = np.asarray(ws.array("aligned")[...])
    gt = in_dir / "gt"
    labels = np.asarray(zarr.open_array(str(gt / "labels.zarr"), mode="r")[...])
    em = np.asarray(zarr.open_array(str(gt / "em.zarr"), mode="r")[...])
    # the truth moved onto the image section by section (registration error and gauge)
    offsets = section_offsets(raw, em)
    labels = labels_in_aligned_frame(labels, offsets, per_section=True)
    syn = pl.read_parquet(gt / "synapses.parquet")
    for side in ("pre", "post"):  # the points move with their section, as the labels did
        d = np.nan_to_num(np.round(offsets[np.clip(syn[f"{side}_z"].to_numpy(), 0,
                                                   len(offsets) - 1)]))
        syn = syn.with_columns((pl.col(f"{side}_y") - d[:, 0]).alias(f"{side}_y"),
                               (pl.col(f"{side}_x") - d[:, 1]).alias(f"{side}_x"))
    clefts = labels_in_aligned_frame(
        np.asarray(zarr.open_array(str(gt / "clefts.zarr"), mode="r")[...]), offsets,
        per_section=True)
    mito = labels_in_aligned_frame(
        np.asarray(zarr.open_array(str(gt / "mito.zarr"), mode="r")[...]), offsets,
        per_section=True) if (gt / "mito.zarr").exists() else None
    return Volume(f"phantom-{seed}", raw, labels.astype(np.uint64), syn, clefts, mito)


def user_volume(raw_path: Path, labels_path: Path) -> Volume:
    """A user's annotated volume (zarr, npy or tiff; same shape, (z, y, x))."""
    from cxgraph.errors import InputDataError
    from pipeline.phantom.io import load_labels

    labels = load_labels(labels_path)
    if Path(raw_path).suffix != ".zarr":
        raw = load_labels(raw_path)
    else:  # a plain array, or an OME-Zarr image (a workspace volume: its level 0)
        node = zarr.open(str(raw_path), mode="r")
        raw = np.asarray((node["s0"] if isinstance(node, zarr.Group) else node)[...])
    if raw.shape != labels.shape:
        raise InputDataError(f"--raw {raw_path} has shape {raw.shape} but --labels "
                             f"{labels_path} has {labels.shape}; they must match")
    if raw.dtype != np.uint8:
        lo, hi = np.percentile(raw, [0.5, 99.5])
        raw = np.clip((raw - lo) / max(hi - lo, 1e-6) * 254 + 1, 1, 255).astype(np.uint8)
    return Volume(Path(raw_path).stem, raw, labels.astype(np.uint64))
