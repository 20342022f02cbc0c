"""Benchmark L1 ingest + L2 stitch/align against the phantom's ground truth.

    python benchmarks/bench_align.py --sections 128 --size 384 --out /tmp/bench_align

Renders a phantom with a missing section, a damaged section, an alignment-fault
band and a misplaced tile (unless --input names an existing one), runs
``cxgraph run --until align`` into a fresh workspace, and prints one JSON line
with the scores of ``pipeline.align.evaluate`` (tile placement, registration
error after removing one global constant, naive pairwise chaining on the same
mosaics, fault flags) and the throughput in Mvoxel/s of ingest+stitch+align.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", type=int, default=128)
    ap.add_argument("--size", type=int, default=384, help="section side, px")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_align"))
    ap.add_argument("--input", type=Path, default=None, help="an existing phantom directory")
    ap.add_argument("--set", action="append", default=[], help="section.param=value")
    args = ap.parse_args()

    from cxgraph.workspace import Workspace
    from pipeline.align.evaluate import evaluate
    from pipeline.phantom import PhantomParams, render_phantom

    z, n = args.sections, args.size
    src = args.input
    if src is None:
        src = args.out / "phantom"
        if not (src / "manifest.json").exists():
            faults = (f"missing-section:z={z // 3}", f"damaged-section:z={2 * z // 3}",
                      f"alignment-fault:z={z // 2}:{z // 2 + 3},shift=30",
                      f"tile-misplacement:z={z // 4},shift=20")
            render_phantom(src, PhantomParams(shape=(z, n, n), seed=args.seed, faults=faults))
    ws_dir = args.out / "ws"
    shutil.rmtree(ws_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "cxgraph", "run", "--input", str(src), "--workspace",
           str(ws_dir), "--until", "align"] + [a for s in args.set for a in ("--set", s)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - t0
    scores = evaluate(Workspace.open(ws_dir), src)
    shape = json.loads((src / "manifest.json").read_text())["shape"]
    voxels = shape[0] * shape[1] * shape[2]
    out = {k: v for k, v in scores.items() if not k.endswith("per_section_error_px")}
    worst = sorted(scores["per_section_error_px"].items(), key=lambda kv: -kv[1])[:5]
    out |= {"shape": shape, "wall_s": round(wall, 1), "mvoxel_per_s": voxels / wall / 1e6,
            "worst_sections": worst, "command": " ".join(cmd)}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
