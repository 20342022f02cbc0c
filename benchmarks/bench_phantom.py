"""Benchmark: render a 128 x 512 x 512 (32 Mvoxel) phantom and report where time goes.

Run: ``python benchmarks/bench_phantom.py [--shape 128,512,512] [--out DIR]``
Prints one JSON line with the stage timings (s), peak RSS (MB) and counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time

from pipeline.phantom import PhantomParams, render_phantom


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="128,512,512")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    shape = tuple(int(v) for v in a.shape.split(","))
    out = a.out or tempfile.mkdtemp(prefix="bench_phantom_")
    params = PhantomParams(shape=shape, seed=a.seed,
                           faults=("staining-gradient:toward=x+", "missing-section",
                                   "damaged-section", "noise-burst"))
    t = time.perf_counter()
    res = render_phantom(out, params, preview=True)
    wall = time.perf_counter() - t
    print(json.dumps({
        "shape": shape, "mvoxels": round(shape[0] * shape[1] * shape[2] / 1e6, 1),
        "wall_s": round(wall, 1), "timings_s": {k: round(v, 1) for k, v in res.timings_s.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "bodies": res.n_bodies, "synapses": res.n_synapses, "tiles": res.n_tiles, "out": out,
    }))


if __name__ == "__main__":
    main()
