"""Benchmark the phantom's look: issue 10's appearance figures at 4 and 8 nm/px.

    python benchmarks/bench_phantom_look.py --px 4 --shape 16,640,640 --seed 101 --out /tmp/look4
    python benchmarks/bench_phantom_look.py --px 8 --shape 32,320,320 --seed 101 --out /tmp/look8

Renders a phantom through the public ``render_phantom`` with the stage and section
displacements switched off (no drift, jitter, placement error, vignetting or per-tile
gain), so the tiles laid at their nominal positions are the recorded sections in the
ground-truth frame, noise and all. Computes every figure of ``appearance`` on them and
prints one JSON line; ``--png`` writes a section beside its labels. Works on any
version of the phantom (figures that need newer ground-truth files are left out).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def recorded_stack(out: Path) -> np.ndarray:
    """The tiles of every section laid at their nominal positions: (z, y, x) float."""
    from pipeline.phantom.io import read_tile

    m = json.loads((out / "manifest.json").read_text())
    z, y, x = m["shape"]
    stack = np.zeros((z, y, x), dtype=np.float32)
    for s in m["sections"]:
        for t in s["tiles"]:
            tile = read_tile(out / t["file"]).astype(np.float32)
            ty, tx = int(t["y"]), int(t["x"])
            h, w = min(tile.shape[0], y - ty), min(tile.shape[1], x - tx)
            stack[s["z"], ty:ty + h, tx:tx + w] = tile[:h, :w]
    return stack


def figures(out: Path, px: float, crop_um: float = 2.5) -> dict:
    import zarr

    from pipeline.phantom import appearance as ap

    img = recorded_stack(out)
    lab = zarr.open_array(str(out / "gt" / "labels.zarr"), mode="r")[...]
    f: dict = {}
    f.update(ap.spectrum_figures(img, px))
    f["smoothed_gradient"] = float(np.mean([ap.smoothed_gradient(s, px) for s in img]))
    f["noise_sd"] = float(np.mean([ap.immerkaer_noise(s) for s in img]))
    t, g, n = ap.membrane_profile(img[len(img) // 2], lab[len(img) // 2], px)
    for z in (len(img) // 4, 3 * len(img) // 4):
        t2, g2, n2 = ap.membrane_profile(img[z], lab[z], px)
        if n2:
            g = (g * n + g2 * n2) / (n + n2)
            n += n2
    f.update(ap.profile_figures(t, g))
    f["membrane_grey"] = float(g[np.abs(t) <= 3].min()) if n else float("nan")
    f["profiles"] = n
    e = [ap.eta2(s, ls, px) for s, ls in zip(img, lab, strict=True)]
    f["eta2"] = float(np.nanmean([v["eta2"] for v in e]))
    f["between_sd_ratio"] = float(np.nanmean([v["between_sd_ratio"] for v in e]))
    f.update(ap.grey_shape(img))
    f["adjacent_corr"] = ap.adjacent_correlation(img)
    c = int(round(crop_um * 1000 / px))
    zs = range(0, len(img), max(1, len(img) // 4))
    d = [ap.difficulty(img[z, :c, :c], lab[z, :c, :c], px) for z in zs]
    f["vi"] = float(np.mean([v["vi"] for v in d]))
    f["arand"] = float(np.mean([v["arand"] for v in d]))
    if (out / "gt" / "vesicles.parquet").exists():
        f.update(ground_truth_figures(out, img, px, threshold=f["membrane_grey"]))
    return f


def ground_truth_figures(out: Path, img: np.ndarray, px: float, threshold: float) -> dict:
    """Figures that need the phantom's organelle and synapse ground truth."""
    import pyarrow.parquet as pq
    import zarr

    from pipeline.phantom import appearance as ap

    v = pq.read_table(out / "gt" / "vesicles.parquet").to_pydict()
    s = pq.read_table(out / "gt" / "synapses.parquet").to_pydict()
    clefts = zarr.open_array(str(out / "gt" / "clefts.zarr"), mode="r")[...]
    f: dict = {"vesicle_diameter_nm": float(np.median(v["diameter_nm"])) if v["z"] else None,
               "vesicles": len(v["z"]), "synapses": len(s["synapse_id"])}
    vz = np.array(v["z"])
    cen = np.stack([v["y"], v["x"]], axis=1) if len(vz) else np.zeros((0, 2))
    profs = []
    for z in range(len(img)):
        sel = np.abs(vz - z) < 0.1
        if sel.sum() >= 5:
            r, g = ap.vesicle_profile(img[z], cen[sel], px)
            profs.append((g, int(sel.sum())))
    if profs:
        g = sum(p * n for p, n in profs) / sum(n for _, n in profs)
        i = int(np.argmin(g[8:30])) + 8
        f["vesicle_ring_diameter_nm"] = float(2 * r[i])
        f["vesicle_ring_depth"] = float(g[40:60].mean() - g[i])
    if s["synapse_id"]:
        f["in_plane_share"] = ap.in_plane_share(s["area_z_nm2"], s["area_y_nm2"],
                                                s["area_x_nm2"])
        f["lateral_share"] = 1.0 - f["in_plane_share"]
        sites, counts = np.unique(s["site_id"], return_counts=True)
        f["polyadic_share"] = float(np.mean(counts > 1))
        f["dark_area_um2"] = ap.dark_area_per_synapse(img, clefts, threshold, px)
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--px", type=float, default=4.0, help="y/x pixel size, nm")
    ap.add_argument("--shape", default="16,640,640")
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--out", type=Path, default=Path("/tmp/look"))
    ap.add_argument("--set", action="append", default=[], help="param=value (numbers)")
    ap.add_argument("--png", type=Path, default=None, help="write a preview PNG here")
    ap.add_argument("--reuse", action="store_true", help="measure an existing --out")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from pipeline.phantom import PhantomParams, render_phantom

    shape = tuple(int(v) for v in a.shape.split(","))
    kw = {k: float(v) for k, v in (s.split("=", 1) for s in a.set)}
    p = PhantomParams(shape=shape, seed=a.seed, voxel_size=(40.0, a.px, a.px),
                      drift_step_px=0.0, section_jitter_px=0.0, placement_error_px=0.0,
                      illumination=0.0, gain_sd=0.0, offset_sd=0.0, **kw)
    t0 = time.perf_counter()
    if not a.reuse:
        render_phantom(a.out, p)
    wall = time.perf_counter() - t0
    f = figures(a.out, a.px)
    f |= {"px_nm": a.px, "shape": shape, "seed": a.seed, "render_s": round(wall, 1)}
    if a.png:
        write_png(a.out, a.png)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items()}))


def write_png(out: Path, path: Path, z: int | None = None) -> None:
    """A recorded section beside its labels (membranes drawn black)."""
    import imageio.v3 as iio
    import zarr

    from pipeline.phantom.io import colour_labels
    from pipeline.phantom.render import boundaries_yx

    img = recorded_stack(out)
    lab = zarr.open_array(str(out / "gt" / "labels.zarr"), mode="r")[...]
    z = len(img) // 2 if z is None else z
    em = np.clip(img[z], 0, 255).astype(np.uint8)
    col = colour_labels(lab[z])
    col[boundaries_yx(lab[z][None])[0]] = 0
    gap = np.full((em.shape[0], 8, 3), 255, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.concatenate([np.repeat(em[..., None], 3, -1), gap, col], axis=1))


if __name__ == "__main__":
    main()
