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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--px", type=float, default=4.0, help="y/x pixel size, nm")
    ap.add_argument("--shape", default="16,640,640")
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--out", type=Path, default=Path("/tmp/look"))
    ap.add_argument("--set", action="append", default=[], help="param=value (numbers)")
    ap.add_argument("--png", type=Path, default=None, help="write a preview PNG here")
    ap.add_argument("--reuse", action="store_true", help="measure an existing --out")
    ap.add_argument("--preset", default="tem", help="a PhantomParams preset")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from pipeline.phantom import render_phantom
    from pipeline.phantom.params import preset_params

    shape = tuple(int(v) for v in a.shape.split(","))
    kw = {k: float(v) for k, v in (s.split("=", 1) for s in a.set)}
    p = preset_params(a.preset, shape=shape, seed=a.seed, voxel_size=(40.0, a.px, a.px),
                      drift_step_px=0.0, section_jitter_px=0.0, placement_error_px=0.0,
                      illumination=0.0, gain_sd=0.0, offset_sd=0.0, **kw)
    t0 = time.perf_counter()
    if not a.reuse:
        render_phantom(a.out, p)
    wall = time.perf_counter() - t0
    from pipeline.phantom.appearance import phantom_figures

    f = phantom_figures(a.out, a.px)
    f |= {"px_nm": a.px, "shape": shape, "seed": a.seed, "render_s": round(wall, 1)}
    if a.png:
        write_png(a.out, a.png)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items()}))


def write_png(out: Path, path: Path, z: int | None = None) -> None:
    """A recorded section beside its labels (membranes drawn black)."""
    import imageio.v3 as iio
    import zarr

    from pipeline.phantom.appearance import recorded_stack
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
