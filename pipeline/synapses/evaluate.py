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


def segmentation_after_refine(segmentation: np.ndarray, operations) -> np.ndarray:
    """The segmentation with the refinement's merges applied (each operation retires
    bodies into the one it creates), so its ids are those of ``tables/synapses``."""
    import fastremap

    to: dict[int, int] = {}
    for created, retired in zip(operations["created"].to_list(),
                                operations["retired"].to_list(), strict=True):
        for r in retired:
            to[int(r)] = int(created[0])
    if not to:
        return segmentation
    for old in list(to):  # follow chains: a created body may itself be retired later
        new = to[old]
        while new in to and to[new] != new:
            new = to[new]
        to[old] = new
    return fastremap.remap(segmentation, to, preserve_missing_labels=True)


def workspace_truth(ws, phantom_dir):
    """(true labels, true synapses) of a workspace's phantom, in the aligned frame (moved
    by the gauge constant, ``pipeline.segment.evaluate``)."""
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
    return gt, truth


def _in_roi(table, roi, outside: bool):
    import polars as pl

    if roi is None:
        return table
    inside = pl.lit(True)
    for k, a in enumerate("zyx"):
        inside &= pl.col(f"post_{a}").is_between(roi.begin[k], roi.end[k], closed="left")
    return table.filter(~inside if outside else inside)


def score_workspace(ws, phantom_dir, roi=None, outside: bool = False,
                    true_segmentation: bool = False) -> dict[str, float]:
    """``partner_scores`` of a workspace's synapses against its phantom's truth, in ``roi``
    (or, ``outside``, everywhere else), by the post site.

    Default: the pipeline's synapses on its own segmentation (after the refinement's
    merges) — the whole reconstruction of the edge. ``true_segmentation``: the
    workspace's synapse predictions extracted with the stage's own rules
    (``detect.candidates``, ``partners.assign``, its parameters) on the TRUE labels —
    detection and direction alone, as CREMI scores partners."""
    import polars as pl

    gt, truth = workspace_truth(ws, phantom_dir)
    vs = ws.array("aligned").attrs.get("voxel_size", (40.0, 8.0, 8.0))
    if true_segmentation:
        pred, seg = _extract_on(ws, gt), None
    else:
        pred = pl.read_parquet(ws.table_path("synapses"))
        seg = segmentation_after_refine(np.asarray(ws.array("segmentation")[...]),
                                pl.read_parquet(ws.table_path("operations")))
    truth, pred = _in_roi(truth, roi, outside), _in_roi(pred, roi, outside)
    return partner_scores(pred.to_dict(as_series=False), truth.to_dict(as_series=False), gt, vs,
                          segmentation=seg)


def _extract_on(ws, labels: np.ndarray):
    """The synapses stage's extraction over the whole volume, with ``labels`` as bodies;
    candidates without a partner are left out, as the refinement leaves them out."""
    import polars as pl

    from pipeline.segment.agglomeration import BodyLookup
    from pipeline.synapses.extract_stage import extract
    from pipeline.synapses.predict_stage import DIR_UNITS

    prob = np.asarray(ws.array("synapse_post")[...], np.float32) / 255.0
    direction = np.asarray(ws.array("synapse_dir")[...], np.float32) / DIR_UNITS
    ids = np.unique(labels).astype(np.uint64)
    rows = [r for r in extract(prob, direction, labels, BodyLookup.of(ids, ids),
                               ws.config["synapses"]) if r["pre_sv"]]
    cols = [f"{s}_{a}" for s in ("pre", "post") for a in "zyx"]
    return pl.DataFrame([{c: r[c] for c in cols} for r in rows],
                        schema=dict.fromkeys(cols, pl.Float64))
