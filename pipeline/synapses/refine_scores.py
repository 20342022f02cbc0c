"""How well the refinement finds the segmentation's errors, against a phantom's truth.

Each supervoxel stands for the true body it overlaps most (``evaluate.body_to_truth``).

- *Safe merges* (``tables/operations``, rule ``safe-merge``): an applied edge is right
  when its two supervoxels stand for the same true body.
- *Suspected splits* (proofreading rows ``split``): right when the row's two supervoxels
  stand for the same true body. A true split is a pair of final bodies that touch (an
  edge of ``tables/agglomeration_edges``) across supervoxels of the same true body;
  recall is the share of those pairs the list names.
- *Suspected merges* (rows ``merge``, the weakest internal merge of a body): right when
  the two supervoxels stand for different true bodies. A true merge is a final body
  whose second-largest true body holds at least ``merge_share`` of its voxels (and
  ``merge_min_voxels``); recall is the share of those bodies the list names.

``precision_top{top}`` is the share of right rows among the list's first ``top`` (by
rank; split and merge rows whose two supervoxels both overlap a true body), and
``caught_top10`` / ``caught_top50`` the number of right rows among the first
10 / 50: what a proofreader working down the list finds. ``voi_before`` / ``voi_after``:
VOI (split + merge, ``pipeline.segment.evaluate.score``) of the agglomeration's
segmentation and of the one after the safe merges — the merges must not make it worse.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl


def refinement_scores(ws, phantom_dir, top: int = 20, merge_share: float = 0.1,
                      merge_min_voxels: int = 1000) -> dict[str, float | int]:
    from pipeline.segment.evaluate import score
    from pipeline.synapses.evaluate import (
        body_to_truth,
        segmentation_after_refine,
        workspace_truth,
    )

    gt, _ = workspace_truth(ws, phantom_dir)
    svs = np.asarray(ws.array("supervoxels")[...])
    truth_of = body_to_truth(svs, gt)
    ops = pl.read_parquet(ws.table_path("operations"))
    proof = pl.read_parquet(ws.table_path("proofreading")).sort("rank")

    def same(a: int, b: int) -> bool | None:
        ta, tb = truth_of.get(int(a)), truth_of.get(int(b))
        return None if ta is None or tb is None else ta == tb

    safe = [same(e["sv_a"], e["sv_b"]) for p in ops["params"].to_list()
            if (rec := json.loads(p or "{}")).get("rule") == "safe-merge"
            for e in rec.get("edges", [])]
    rows = [(k, same(a, b)) for k, a, b in proof.select("kind", "sv_a", "sv_b").iter_rows()]
    right = [(k == "split") == s for k, s in rows if k in ("split", "merge") and s is not None]

    # final bodies: the supervoxels' bodies with the refinement's merges applied
    agglomerated = np.asarray(ws.array("segmentation")[...])
    seg = segmentation_after_refine(agglomerated, ops)
    before, after = score(agglomerated, gt), score(seg, gt)
    body_of = body_to_truth(svs, seg)
    edges = pl.read_parquet(ws.table_path("agglomeration_edges")).select("sv_a", "sv_b")
    true_splits = {frozenset((body_of[a], body_of[b])) for a, b in edges.iter_rows()
                   if a in body_of and b in body_of and body_of[a] != body_of[b]
                   and same(a, b)}
    named_splits = {frozenset((a, b)) for k, a, b in
                    proof.select("kind", "body_a", "body_b").iter_rows() if k == "split"}
    merged = _merged_bodies(seg, gt, merge_share, merge_min_voxels)
    named_merges = set(proof.filter(pl.col("kind") == "merge")["body_a"].to_list())

    def share(xs) -> float:
        xs = [bool(x) for x in xs if x is not None]
        return round(sum(xs) / len(xs), 3) if xs else float("nan")

    return {
        "safe_merges": len(safe), "safe_merges_right": share(safe),
        "split_rows": sum(k == "split" for k, _ in rows),
        "split_precision": share(s for k, s in rows if k == "split"),
        "split_recall": share(p in named_splits for p in true_splits),
        "true_splits": len(true_splits),
        "merge_rows": sum(k == "merge" for k, _ in rows),
        "merge_precision": share(not s if s is not None else None
                                 for k, s in rows if k == "merge"),
        "merge_recall": share(b in named_merges for b in merged),
        "true_merges": len(merged),
        f"precision_top{top}": share(right[:top]),
        "caught_top10": sum(right[:10]), "caught_top50": sum(right[:50]),
        "voi_before": round(before["voi"], 3), "voi_after": round(after["voi"], 3),
    }


def _merged_bodies(seg: np.ndarray, gt: np.ndarray, min_share: float,
                   min_voxels: int) -> set[int]:
    """Bodies whose second-largest true body holds >= min_share of them (and min_voxels)."""
    s, g = seg.reshape(-1), gt.reshape(-1)
    keep = (s > 0) & (g > 0)
    pairs, counts = np.unique(np.stack([s[keep], g[keep]]), axis=1, return_counts=True)
    per: dict[int, list[int]] = {}
    for b, n in zip(pairs[0].tolist(), counts.tolist(), strict=True):
        per.setdefault(b, []).append(n)
    out = set()
    for b, ns in per.items():
        if len(ns) > 1:
            second = sorted(ns)[-2]
            if second >= min_voxels and second >= min_share * sum(ns):
                out.add(b)
    return out
