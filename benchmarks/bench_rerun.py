"""The corner's regional re-run with several remedies, scored against the truth.

Takes a workspace that ran the pipeline on a phantom (e.g. ``bench_segment.py``'s
``demo-stained/ws``, or one through L4), and for each remedy re-runs, on a fresh copy,
its stage and everything downstream in the region only (the traceback's action), then
prints VOI/ARAND (scikit-image) for the region, the opposite quarter and the whole
volume; with ``--synapses`` (the workspace ran L4) also the partner scores of the
pipeline's own synapses in the region and outside it — the corner's synapse deficit.

    python benchmarks/bench_rerun.py --workspace /tmp/bench-seg/demo-stained/ws \\
        --phantom /tmp/bench-seg/demo-stained/in --copy /tmp/rerun-ws \\
        --remedy agglomerate.threshold=0.3 --remedy affinities.tta=8

A remedy is ``key=value[;key=value]``; the re-run starts at the first key's stage.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.engine import Roi
from pipeline.segment.evaluate import score, truth_in_aligned_frame


def show(ws: Workspace, gt: np.ndarray, places: dict, run: str, region: Roi,
         phantom: Path, synapses: bool) -> None:
    seg = np.asarray(ws.array("segmentation")[...])
    for name, sl in places.items():
        s = {k: round(v, 3) for k, v in score(seg[sl], gt[sl]).items()}
        print(json.dumps({"run": run, "where": name, **s}), flush=True)
    if synapses:
        from pipeline.synapses.evaluate import score_workspace

        for name, outside in (("region", False), ("outside", True)):
            s = score_workspace(ws, phantom, roi=region, outside=outside)
            print(json.dumps({"run": run, "where": f"synapses {name}",
                              **{k: round(v, 3) for k, v in s.items()}}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--phantom", type=Path, required=True, help="the phantom's directory")
    ap.add_argument("--copy", type=Path, required=True, help="where to copy the workspace")
    ap.add_argument("--region", default="0:24,192:384,192:384")
    ap.add_argument("--opposite", default="0:24,0:192,0:192")
    ap.add_argument("--remedy", action="append", default=[], metavar="KEY=VALUE[;KEY=VALUE]")
    ap.add_argument("--synapses", action="store_true", help="re-run and score L4 too")
    a = ap.parse_args()
    until = "refine" if a.synapses else "segmentation"
    region = Roi.parse(a.region)
    places = {"region": region.slices, "opposite": Roi.parse(a.opposite).slices,
              "whole": np.s_[:, :, :]}
    ws = Workspace.open(a.workspace)
    gt = truth_in_aligned_frame(np.asarray(ws.array("aligned")[...]), a.phantom)
    show(ws, gt, places, "before", region, a.phantom, a.synapses)
    for remedy in a.remedy:
        sets = remedy.split(";")
        shutil.rmtree(a.copy, ignore_errors=True)
        shutil.copytree(a.workspace, a.copy)
        ws = Workspace.open(a.copy)
        ws.set_config(ws.config.with_regional(region.as_list(), sets))
        registry.run_pipeline(ws, start=sets[0].split(".")[0], until=until, region=region)
        show(ws, gt, places, f"region re-run with {remedy}", region, a.phantom, a.synapses)


if __name__ == "__main__":
    main()
