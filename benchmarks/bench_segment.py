"""L3 side by side: affinity models on the same held-out phantoms, scored against the truth.

Two volumes no training run used: a clean one (seed 901, 16 x 256 x 256, the L3 table of
BENCHMARKS.md) and the demo's (seed 1, 24 x 384 x 384, staining gradient toward y+x+ at
strength 0.85). Each goes through L1-L3 once with the first model; every further model
re-runs from ``affinities`` on a copy of that workspace (same tiles, same alignment).
VOI and ARAND (scikit-image) over the whole volume and over the stained corner.

The peer (``--peer``): the mutex watershed (``mwatershed``, Wolf et al. 2018) on the
first model's 8 affinity channels (nearest and long-range) predicted for the whole
volume at once, at each bias in ``--biases``: the field's single-pass alternative to
supervoxels + agglomeration, on the same network output.

    python benchmarks/bench_segment.py --workdir /tmp/bench-seg \\
        --models pipeline/segment/models/affinities-unet.pt,NEW.pt
    python benchmarks/bench_segment.py --workdir /tmp/bench-seg --threshold 0.4 \\
        --set agglomerate.context=[2,16,16] --models pipeline/segment/models/affinities-unet.pt
    python benchmarks/bench_segment.py --workdir /tmp/bench-seg \\
        --models pipeline/segment/models/affinities-unet.pt --variant affinities.tta=4

Prints a Markdown table and writes ``results.json`` in the workdir.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from cxgraph.commands.demo import DEMO_BLOCKS, DEMO_FAULTS, DEMO_PHANTOM, corner_of
from cxgraph.config import Config
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.engine import Roi
from pipeline.phantom import PhantomParams, render_phantom
from pipeline.segment.evaluate import score, truth_in_aligned_frame

VOLUMES = {
    "clean-901": dict(params=PhantomParams(seed=901, shape=(16, 256, 256)),
                      blocks=["blocks.block_shape=[16,128,128]",
                              "blocks.chunk_shape=[16,128,128]"]),
    "demo-stained": dict(params=PhantomParams(seed=1, shape=(24, 384, 384), faults=DEMO_FAULTS,
                                              **DEMO_PHANTOM), blocks=DEMO_BLOCKS),
}


def scores(ws: Workspace, gt: np.ndarray, corner: Roi) -> dict[str, dict[str, float]]:
    seg = np.asarray(ws.array("segmentation")[...])
    sl = corner.slices
    return {"whole": score(seg, gt), "corner": score(seg[sl], gt[sl])}


def mutex_watershed(ws: Workspace, model: Path, biases: list[float]) -> dict[float, np.ndarray]:
    """Mutex-watershed segmentations of the whole aligned volume, one per bias (affinity
    minus bias: positive attracts, negative repels)."""
    import mwatershed
    from scipy.special import expit

    from pipeline.segment.affinities_stage import predict
    from pipeline.segment.training_data import grey_range, standardise
    from pipeline.segment.unet import AFFINITY_OFFSETS

    aligned = np.asarray(ws.array("aligned")[...])
    logits = predict(standardise(aligned, grey_range(aligned)), str(model), threads=2)
    affs = expit(logits).astype(np.float64)
    offsets = [list(o) for o in AFFINITY_OFFSETS]
    out = {}
    for b in biases:
        seg = mwatershed.agglom(affs - b, offsets)
        seg[aligned == 0] = 0
        out[b] = seg
    return out


def whole_volume_waterz(ws: Workspace) -> np.ndarray:
    """The reference the blockwise agglomeration approximates: waterz once over the whole
    volume's supervoxels and affinities, with the stage's scoring and threshold."""
    import fastremap
    import waterz

    from pipeline.segment.agglomeration import SCORING, quiet_stdout

    p = ws.config["agglomerate"]
    affs = np.asarray(ws.array("affinities")[...][:3], np.float32) / 255.0
    frag = fastremap.renumber(np.asarray(ws.array("supervoxels")[...]))[0].astype(np.uint64)
    with quiet_stdout():
        seg = next(waterz.agglomerate(affs, [p.threshold], fragments=frag,
                                      scoring_function=SCORING[p.scoring]))
    return seg.copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--models", required=True, help="comma-separated .pt files")
    ap.add_argument("--volumes", default=",".join(VOLUMES))
    ap.add_argument("--threshold", type=float, default=None,
                    help="agglomerate.threshold for every run (default: the code's)")
    ap.add_argument("--whole-volume", action="store_true",
                    help="also waterz on the whole volume at once (the blockwise reference)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a stage parameter for every run, e.g. agglomerate.context=[2,16,16] "
                         "(repeatable; everything else at the code's defaults)")
    ap.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[;KEY=VALUE]",
                    help="one more run of the first model from `affinities` with these "
                         "parameters (repeatable)")
    ap.add_argument("--peer", action="store_true", help="also the mutex watershed")
    ap.add_argument("--biases", default="0.3,0.5,0.7")
    args = ap.parse_args()
    models = [Path(m).resolve() for m in args.models.split(",")]
    runs = [(m, m.name, []) for m in models] + [
        (models[0], f"{models[0].name}, {v}", v.split(";")) for v in args.variant]
    results = []
    for name in args.volumes.split(","):
        spec = VOLUMES[name]
        root = args.workdir / name
        phantom_dir = root / "in"
        if not (phantom_dir / "manifest.json").exists():
            render_phantom(phantom_dir, spec["params"])
        sets = list(spec["blocks"])
        if args.threshold is not None:
            sets.append(f"agglomerate.threshold={args.threshold}")
        sets += args.set
        base = root / "ws"
        gt = None
        for i, (model, label, extra) in enumerate(runs):
            wdir = base if i == 0 else root / f"ws-{i}"
            if i > 0 and not wdir.exists():
                shutil.copytree(base, wdir)
            ws = (Workspace.open(wdir) if wdir.exists()
                  else Workspace.create(wdir, Config().with_overrides(sets)))
            # the code's defaults, not what an earlier run wrote into the workspace
            ws.set_config(Config().with_overrides([*sets, *extra, f"affinities.model={model}"]))
            t0 = time.perf_counter()
            registry.run_pipeline(ws, {"tile_dir": phantom_dir}, start=None if i == 0
                                  else "affinities", until="segmentation")
            seconds = time.perf_counter() - t0
            gt = (truth_in_aligned_frame(np.asarray(ws.array("aligned")[...]), phantom_dir)
                  if gt is None else gt)
            shape = ws.array("aligned").shape
            corner = Roi.parse(corner_of(shape, ws.config["blocks"].block_shape))
            results.append({"volume": name, "model": label, "seconds": round(seconds, 1),
                            **scores(ws, gt, corner)})
            print(json.dumps(results[-1]), flush=True)
            if args.whole_volume and i == 0:
                seg, sl = whole_volume_waterz(ws), corner.slices
                results.append({"volume": name, "model": f"{model.name}, waterz on the whole "
                                "volume", "seconds": None,
                                "whole": score(seg, gt), "corner": score(seg[sl], gt[sl])})
                print(json.dumps(results[-1]), flush=True)
        if args.peer:
            ws = Workspace.open(base)
            t0 = time.perf_counter()
            segs = mutex_watershed(ws, models[0], [float(b) for b in args.biases.split(",")])
            seconds = (time.perf_counter() - t0) / len(segs)
            for b, seg in segs.items():
                sl = corner.slices
                results.append({"volume": name, "model": f"mutex watershed, bias {b} "
                                f"({models[0].name})", "seconds": round(seconds, 1),
                                "whole": score(seg, gt), "corner": score(seg[sl], gt[sl])})
                print(json.dumps(results[-1]), flush=True)
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1))
    print("\n| volume | model | where | VOI split | VOI merge | VOI | ARAND |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for where in ("whole", "corner"):
            s = r[where]
            print(f"| {r['volume']} | {r['model']} | {where} | {s['voi_split']:.2f} | "
                  f"{s['voi_merge']:.2f} | {s['voi']:.2f} | {s['arand']:.2f} |")


if __name__ == "__main__":
    main()
