"""The corner's regional re-run at several agglomeration thresholds, scored against the truth.

Takes a workspace that ran L1-L3 on a phantom (e.g. ``bench_segment.py``'s
``demo-stained/ws``), copies it, and for each threshold re-runs ``agglomerate`` and
``segmentation`` in the region only (the traceback's remedy), then prints VOI/ARAND
(scikit-image) for the region, the opposite quarter and the whole volume.

    python benchmarks/bench_rerun_threshold.py --workspace /tmp/bench-seg/demo-stained/ws \\
        --phantom /tmp/bench-seg/demo-stained/in --copy /tmp/rerun-ws --thresholds 0.3,0.4,0.45
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--phantom", type=Path, required=True, help="the phantom's directory")
    ap.add_argument("--copy", type=Path, required=True, help="where to copy the workspace")
    ap.add_argument("--region", default="0:24,192:384,192:384")
    ap.add_argument("--opposite", default="0:24,0:192,0:192")
    ap.add_argument("--thresholds", default="0.3,0.35,0.4,0.45")
    a = ap.parse_args()
    shutil.rmtree(a.copy, ignore_errors=True)
    shutil.copytree(a.workspace, a.copy)
    ws = Workspace.open(a.copy)
    gt = truth_in_aligned_frame(np.asarray(ws.array("aligned")[...]), a.phantom)
    region = Roi.parse(a.region)
    places = {"region": region.slices, "opposite": Roi.parse(a.opposite).slices,
              "whole": np.s_[:, :, :]}

    def show(what: str) -> None:
        seg = np.asarray(ws.array("segmentation")[...])
        for name, sl in places.items():
            s = {k: round(v, 3) for k, v in score(seg[sl], gt[sl]).items()}
            print(json.dumps({"run": what, "where": name, **s}), flush=True)

    show("before")
    for t in a.thresholds.split(","):
        ws.set_config(ws.config.with_regional(region.as_list(), [f"agglomerate.threshold={t}"]))
        registry.run_pipeline(ws, start="agglomerate", until="segmentation", region=region)
        show(f"region re-run at {t}")


if __name__ == "__main__":
    main()
