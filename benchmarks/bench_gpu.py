"""Affinity inference speed of the shipped U-Net on this machine's device (CUDA when
present, with mixed precision, as the stage runs it; CPU otherwise), in Mvoxel/s.

    python benchmarks/bench_gpu.py [--block 32,256,256] [--seconds 120]

Runs the stage's own ``predict`` on random standardised blocks (speed does not depend
on the content) after one warm-up pass, for about ``--seconds`` (under 5 minutes in
all), and prints one JSON line: device, block, passes, Mvoxel/s.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from pipeline.segment.affinities_stage import SHIPPED, predict
from pipeline.segment.unet import device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--block", default="32,256,256", help="z,y,x voxels per pass")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (CPU only)")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.block.split(","))
    x = np.random.default_rng(0).normal(0, 0.5, shape).astype(np.float32)
    dev = device()
    predict(x, str(SHIPPED), args.threads)  # warm-up: weights load, kernels pick
    passes, t0 = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - t0 < args.seconds:
        predict(x, str(SHIPPED), args.threads)
        if dev.type == "cuda":
            import torch

            torch.cuda.synchronize()
        passes += 1
    seconds = time.perf_counter() - t0
    print(json.dumps({"device": str(dev), "mixed_precision": dev.type == "cuda",
                      "block": list(shape), "passes": passes, "seconds": round(seconds, 1),
                      "mvoxel_per_s": round(passes * float(np.prod(shape)) / seconds / 1e6, 3)}))


if __name__ == "__main__":
    main()
