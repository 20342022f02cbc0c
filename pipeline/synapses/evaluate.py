"""Synaptic-partner scores, CREMI-style, against the phantom's true synapses.

A predicted (pre, post) pair matches a true one when both its points lie within
``max_distance_nm`` (400 nm, as CREMI) of the true pair's and its partners are the
true partners; predictions and truths are paired by the Hungarian method on the
summed distance (``scipy.optimize.linear_sum_assignment``), so each counts once.
"The true partners" is read two ways:

- ``with_true_segmentation``: the true labels under the predicted pre and post points
  are the true pair's pre and post bodies (detection and direction alone);
- with the pipeline's own segmentation (default): the predicted pair's bodies, each
  mapped to the true body it overlaps most, are the true pair's bodies (the whole
  reconstruction of the edge).

Precision = TP / predictions, recall = TP / truths, F = their harmonic mean.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def _points(t, side: str) -> np.ndarray:
    return np.stack([np.asarray(t[f"{side}_{a}"], float) for a in "zyx"], 1) if len(
        t[f"{side}_z"]) else np.zeros((0, 3))


def body_to_truth(segmentation: np.ndarray, gt: np.ndarray) -> dict[int, int]:
    """Each predicted body -> the true body it overlaps most (background not counted)."""
    seg, g = segmentation.reshape(-1), gt.reshape(-1)
    keep = (seg > 0) & (g > 0)
    pairs, counts = np.unique(np.stack([seg[keep], g[keep]]), axis=1, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (s, t), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
        if n > best.get(s, (0, 0))[1]:
            best[s] = (t, n)
    return {s: t for s, (t, _) in best.items()}


def partner_scores(pred: dict, truth: dict, gt: np.ndarray, voxel_size_nm,
                   segmentation: np.ndarray | None = None,
                   max_distance_nm: float = 400.0) -> dict[str, float]:
    """{tp, predictions, truths, precision, recall, f} (see the module docstring).

    ``pred``: columns pre_z/y/x, post_z/y/x (voxels), and pre_body/post_body when scored
    with ``segmentation``; ``truth``: the phantom's table (pre_id, post_id, points).
    """
    vs = np.asarray(voxel_size_nm, float)
    pp, pq = _points(pred, "pre") * vs, _points(pred, "post") * vs
    tp_, tq = _points(truth, "pre") * vs, _points(truth, "post") * vs
    n_pred, n_true = len(pp), len(tp_)
    if n_pred and n_true:
        d = (np.linalg.norm(pp[:, None] - tp_[None], axis=2)
             + np.linalg.norm(pq[:, None] - tq[None], axis=2))
        far = (np.linalg.norm(pp[:, None] - tp_[None], axis=2) > max_distance_nm) | (
            np.linalg.norm(pq[:, None] - tq[None], axis=2) > max_distance_nm)
        if segmentation is None:
            def lab(p):
                idx = np.clip(np.rint(p / vs).astype(int), 0, np.array(gt.shape) - 1)
                return gt[tuple(idx.T)]
            pre_b, post_b = lab(pp), lab(pq)
        else:
            to_true = body_to_truth(segmentation, gt)
            pre_b = np.array([to_true.get(int(b), -1) for b in pred["pre_body"]])
            post_b = np.array([to_true.get(int(b), -1) for b in pred["post_body"]])
        same = (pre_b[:, None] == np.asarray(truth["pre_id"], np.int64)[None]) & (
            post_b[:, None] == np.asarray(truth["post_id"], np.int64)[None])
        cost = np.where(far | ~same, 1e9, d)
        rows, cols = linear_sum_assignment(cost)
        tp = int((cost[rows, cols] < 1e9).sum())
    else:
        tp = 0
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "predictions": n_pred, "truths": n_true, "precision": precision,
            "recall": recall, "f": f}


def score_workspace(ws, phantom_dir, roi=None, outside: bool = False) -> dict[str, float]:
    """``partner_scores`` of a workspace's synapses against its phantom's truth, with the
    pipeline's own segmentation, in ``roi`` (or, ``outside``, everywhere else), by the post
    site. The truth is moved into the aligned frame by the gauge constant first
    (``pipeline.segment.evaluate``)."""
    from pathlib import Path

    import polars as pl
    import zarr

    from pipeline.segment.evaluate import labels_in_aligned_frame, section_offsets

    gt_dir = Path(phantom_dir) / "gt"
    aligned = np.asarray(ws.array("aligned")[...])
    em = np.asarray(zarr.open_array(str(gt_dir / "em.zarr"), mode="r")[...])
    offsets = section_offsets(aligned, em)
    labels = np.asarray(zarr.open_array(str(gt_dir / "labels.zarr"), mode="r")[...])
    gt = labels_in_aligned_frame(labels, offsets, per_section=False)
    dy, dx = np.round(np.nan_to_num(np.nanmedian(offsets, axis=0)))
    truth = pl.read_parquet(gt_dir / "synapses.parquet").with_columns(
        *(pl.col(f"{s}_y") - dy for s in ("pre", "post")),
        *(pl.col(f"{s}_x") - dx for s in ("pre", "post")))
    pred = pl.read_parquet(ws.table_path("synapses"))
    if roi is not None:
        def keep(t):
            inside = pl.lit(True)
            for k, a in enumerate("zyx"):
                inside &= pl.col(f"post_{a}").is_between(roi.begin[k], roi.end[k], closed="left")
            return t.filter(~inside if outside else inside)
        truth, pred = keep(truth), keep(pred)
    seg = np.asarray(ws.array("segmentation")[...])
    vs = ws.array("aligned").attrs.get("voxel_size", (40.0, 8.0, 8.0))
    return partner_scores(pred.to_dict(as_series=False), truth.to_dict(as_series=False), gt, vs,
                          segmentation=seg)
