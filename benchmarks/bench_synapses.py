"""Benchmark: L4 synapse detection, the U-Net against the non-learned baseline, side by side.

Renders a phantom never used in training (or takes a rendered one), runs L1-L3 once, then
the three L4 stages (synapse_prediction, synapses, refine) once per method on copies of
the same workspace, and scores each against the phantom's true synapses with CREMI-style
partner matching (``pipeline/synapses/evaluate.py``): with the true segmentation
(detection and direction alone) and with the pipeline's own; inside a region (e.g. a
staining-gradient corner) and outside it; and how well the refinement finds the
segmentation's errors (``pipeline/synapses/refine_scores.py``), and the L4 stages' speed.

Run: ``python benchmarks/bench_synapses.py --workdir DIR [--shape 24,384,384] [--seed 1]
[--fault staining-gradient:toward=y+x+,strength=0.85] [--region 0:24,192:384,192:384]``
Prints one JSON line per method and one with the time ratio (U-Net / baseline, L4 stages).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--shape", default="24,384,384")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fault", default="staining-gradient:toward=y+x+,strength=0.85")
    ap.add_argument("--region", default="0:24,192:384,192:384")
    ap.add_argument("--bouton-spacing", type=float, default=1000.0)
    a = ap.parse_args()

    from cxgraph.config import Config
    from cxgraph.workspace import Workspace
    from pipeline.engine import Roi
    from pipeline.phantom import PhantomParams, render_phantom
    from pipeline.registry import run_pipeline
    from pipeline.synapses.evaluate import score_workspace
    from pipeline.synapses.refine_scores import refinement_scores

    shape = tuple(int(v) for v in a.shape.split(","))
    phantom = a.workdir / "phantom"
    if not (phantom / "manifest.json").exists():
        render_phantom(phantom, PhantomParams(shape=shape, seed=a.seed, faults=(a.fault,),
                                              bouton_spacing_nm=a.bouton_spacing))
    base = a.workdir / "l3"
    # the code's defaults on every run, not what an earlier run wrote into the workspace
    config = Config().with_overrides(["blocks.block_shape=[12,96,96]",
                                      "blocks.chunk_shape=[12,96,96]"])
    run_pipeline(Workspace.create(base, config), {"tile_dir": phantom}, until="segmentation")
    region = Roi.parse(a.region)
    times = {}
    for method in ("unet", "baseline"):
        root = a.workdir / method
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(base, root)
        ws = Workspace.open(root)
        ws.set_config(ws.config.with_overrides([f"synapse_prediction.method={method}"]))
        t = time.perf_counter()
        run_pipeline(ws, start="synapse_prediction", until="refine")
        times[method] = time.perf_counter() - t
        row = {"method": method, "l4_seconds": round(times[method], 1),
               "l4_mvoxel_per_s": round(np.prod(shape) / 1e6 / times[method], 3),
               "refinement": refinement_scores(ws, phantom)}
        for label, kw in (("true_seg", {"true_segmentation": True}), ("own_seg", {})):
            for where, rkw in (("all", {}), ("region", {"roi": region}),
                               ("outside", {"roi": region, "outside": True})):
                s = score_workspace(ws, phantom, **kw, **rkw)
                row[f"{label}_{where}"] = {k: round(v, 3) if isinstance(v, float) else v
                                           for k, v in s.items()}
        print(json.dumps(row))
    print(json.dumps({"time_ratio_unet_over_baseline":
                      round(times["unet"] / times["baseline"], 2)}))


if __name__ == "__main__":
    main()
