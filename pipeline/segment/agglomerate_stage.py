"""The L3 ``agglomerate`` stage: supervoxels joined into bodies, keeping the merge history.

Blocks (read region = write region + ``context``) score every edge they see with
waterz (``scoring``) (``agglomeration.block_merge_scores``) into
``tables/agglomeration_edges`` (sv_a, sv_b, score, threshold, block). ``finalize``
keeps each edge's highest score over the blocks that saw it
(``agglomeration.combine_views``: a block's view of the regions at its faces is cut off),
builds the merge forest and cuts each edge at the threshold of the block that owns it
— the run's ``threshold``, except where a regional re-run set another for its blocks only:

- ``tables/agglomeration`` — the merge history: one row per union in order
  (sv_a, sv_b, score, affinity = 1 - score, step, merged = score <= threshold,
  block, stage_run). The bodies at any threshold t are the components of the rows
  with score <= t; the graph loads the merged ones as ``MergedWith``.
- ``tables/supervoxels`` — sv_id, body_id, size, bounding box, centroid, block,
  stage_run (the agglomeration run that last changed its body).
- ``tables/bodies`` — body_id, size (voxels), supervoxels, stage_run, block (of its
  largest supervoxel).

Body ids come from their supervoxel sets (``agglomeration.body_ids``): a regional
re-run changes the ids of the bodies it changes and of no other.

L3 quality per block, over the edges it owns: ``edges``, ``merges`` (scoring <= threshold),
``edge_score_ambiguous_fraction`` (0.3 < score < 0.7: the agglomeration was unsure);
in ``finalize``, per block of a body's largest supervoxel: ``bodies``,
``supervoxels_per_body``, ``single_supervoxel_bodies``, ``bodies_ending_inside``
(bodies whose bounding box touches no face of the volume: in dense neuropil, a sign
of split errors), and for the volume: ``bodies``, ``merge_threshold``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cxgraph.errors import ConfigError, WorkspaceError
from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, StageContext
from pipeline.segment import agglomeration as agg


@dataclasses.dataclass(frozen=True)
class AgglomerateParams(Params):
    """L3 agglomeration (waterz per block, each edge's highest score, one merge forest)."""

    threshold: float = 0.5  # bodies = merges with score (1 - boundary affinity) <= this;
    # 0.5 is the best of 0.35-0.55 on phantom seed 901 and the demo volume (BENCHMARKS.md)
    scoring: str = "quantile50"  # waterz merge function: quantile50 | quantile75 | mean
    # read margin per block, voxels (z, y, x): ~0.8 um in xy, so that a region's boundary
    # is mostly seen whole (demo volume at threshold 0.4: 16 px VOI 2.67, 64 px 2.16,
    # 96 px 2.08; BENCHMARKS.md)
    context: tuple[int, int, int] = (8, 96, 96)

    def __post_init__(self) -> None:
        if self.scoring not in agg.SCORING:
            raise ConfigError(f"agglomerate.scoring: expected one of {sorted(agg.SCORING)}, "
                              f"got {self.scoring!r}")


def context(params: AgglomerateParams) -> tuple[int, int, int]:
    return params.context


def grid(ctx: StageContext, plan: None) -> BlockGrid:
    return BlockGrid(tuple(ctx.input_array("supervoxels").shape),
                     ctx.ws.config["blocks"].block_shape, context(ctx.params))


def agglomerate_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    p: AgglomerateParams = ctx.params
    affs = ctx.read("affinities", block.read_roi).astype(np.float32) / 255.0
    svs = ctx.read("supervoxels", block.read_roi)
    u, v, score = agg.block_merge_scores(affs, svs, scoring=p.scoring)
    ctx.rows("agglomeration_edges", block, [
        {"sv_a": int(a), "sv_b": int(b), "score": float(s), "threshold": p.threshold}
        for a, b, s in zip(u.tolist(), v.tolist(), score.tolist(), strict=True)])
    score = score[agg.owner_block(u) == np.uint64(block.block_id)]  # quality: its own edges
    return [{"metric": "edges", "value": float(len(score))},
            {"metric": "merges", "value": float((score <= p.threshold).sum())},
            {"metric": "merges_per_edge",
             "value": float((score <= p.threshold).mean()) if len(score) else 0.0},
            {"metric": "edge_score_ambiguous_fraction",
             "value": float(((score > 0.3) & (score < 0.7)).mean()) if len(score) else 0.0}]


def finalize(ctx: StageContext, plan: None) -> None:
    p: AgglomerateParams = ctx.params
    run = ctx.run.stage_run_id
    edges = ctx.block_table("agglomeration_edges")
    frag = ctx.read_table("fragments")
    svs = np.asarray(frag["sv_id"].to_numpy(), np.uint64)
    if edges is None or edges.num_rows == 0:
        u = v = np.zeros(0, np.uint64)
        score, eblock, cut = np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
    else:
        u, v, score, eblock, cut = agg.combine_views(
            edges["sv_a"].to_numpy(), edges["sv_b"].to_numpy(), edges["score"].to_numpy(),
            edges["block"].to_numpy(),
            (edges["threshold"].to_numpy() if "threshold" in edges.column_names
             else np.full(edges.num_rows, p.threshold)), svs)
    forest = agg.merge_forest(u, v, score)
    merged = score[forest] <= cut[forest]
    ctx.write_table("agglomeration", pa.table({
        "sv_a": u[forest].astype(np.int64), "sv_b": v[forest].astype(np.int64),
        "score": score[forest], "affinity": 1.0 - score[forest],
        "step": np.arange(len(forest), dtype=np.int64), "merged": merged,
        "block": eblock[forest].astype(np.int64), "stage_run": [run] * len(forest)}))
    comp = agg.components(svs, u[forest][merged], v[forest][merged])
    body = agg.body_ids(svs, comp)
    sv_table = _supervoxel_table(ctx, frag, body, run)
    ctx.write_table("supervoxels", sv_table)
    ctx.write_table("bodies", _body_table(ctx, sv_table, run))
    ctx.quality_rows(_body_quality(ctx, sv_table, p))


def _previous(ctx: StageContext, name: str, key: str) -> dict[int, tuple[Any, ...]]:
    """{key: (body_id, stage_run)} of the live table, when a previous run wrote one."""
    if not ctx.ws.table_path(name).exists():
        return {}
    old = ctx.ws.read_table(name)
    if key not in old.column_names or "stage_run" not in old.column_names:
        return {}
    cols = [old[c].to_pylist() for c in (key, "body_id", "stage_run")]
    return {k: (b, r) for k, b, r in zip(*cols, strict=True)}


def _supervoxel_table(ctx: StageContext, frag: pa.Table, body: np.ndarray, run: str) -> pa.Table:
    prev = _previous(ctx, "supervoxels", "sv_id")
    # a supervoxel keeps the run that last changed its body
    stage_runs = [old_run if old_body == int(new) else run
                  for (old_body, old_run), new in zip(
                      (prev.get(int(s), (None, run)) for s in frag["sv_id"].to_pylist()),
                      body.tolist(), strict=True)]
    cols = {c: frag[c] for c in frag.column_names if c != "sv_id"}
    return pa.table({"sv_id": frag["sv_id"], "body_id": pa.array(body.astype(np.int64)),
                     **cols, "stage_run": pa.array(stage_runs, pa.string())})


def _body_table(ctx: StageContext, sv: pa.Table, run: str) -> pa.Table:
    body = sv["body_id"].to_numpy()
    size = sv["size"].to_numpy()
    block = sv["block"].to_numpy()
    order = np.lexsort((-size, body))
    b_sorted = body[order]
    starts = np.flatnonzero(np.r_[True, b_sorted[1:] != b_sorted[:-1]])
    sums = np.add.reduceat(size[order], starts) if len(starts) else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, len(b_sorted)])
    runs = sv["stage_run"].to_numpy(zero_copy_only=False)[order]
    # a body is as new as its newest supervoxel assignment
    body_run = [run if (runs[a:a + n] == run).any() else runs[a]
                for a, n in zip(starts.tolist(), counts.tolist(), strict=True)]
    return pa.table({"body_id": b_sorted[starts], "size": sums.astype(np.int64),
                     "supervoxels": counts.astype(np.int64),
                     "block": block[order][starts].astype(np.int64),
                     "stage_run": pa.array(body_run, pa.string())})


def _body_quality(ctx: StageContext, sv: pa.Table, p: AgglomerateParams) -> list[dict]:
    shape = ctx.input_array("supervoxels").shape
    t = pa.table({"body": sv["body_id"], "block": sv["block"], "size": sv["size"],
                  **{c: sv[c] for c in ("z0", "y0", "x0", "z1", "y1", "x1")}})
    g = t.group_by("body").aggregate([("size", "sum"), ("size", "count"), ("z0", "min"),
                                       ("y0", "min"), ("x0", "min"), ("z1", "max"),
                                       ("y1", "max"), ("x1", "max")])
    # the block of each body's largest supervoxel
    largest = t.sort_by([("body", "ascending"), ("size", "descending")])
    first = np.r_[True, largest["body"].to_numpy()[1:] != largest["body"].to_numpy()[:-1]]
    home = dict(zip(largest["body"].to_numpy()[first].tolist(),
                    largest["block"].to_numpy()[first].tolist(), strict=True))
    touches = (pc.equal(g["z0_min"], 0).to_numpy(zero_copy_only=False)
               | pc.equal(g["y0_min"], 0).to_numpy(zero_copy_only=False)
               | pc.equal(g["x0_min"], 0).to_numpy(zero_copy_only=False)
               | (g["z1_max"].to_numpy() >= shape[0]) | (g["y1_max"].to_numpy() >= shape[1])
               | (g["x1_max"].to_numpy() >= shape[2]))
    per: dict[int, list[tuple[int, bool]]] = {}
    for b, n, t_ in zip(g["body"].to_pylist(), g["size_count"].to_pylist(), touches.tolist(),
                        strict=True):
        per.setdefault(home[b], []).append((n, t_))
    rows: list[dict] = []
    for block, items in sorted(per.items()):
        n = np.array([i[0] for i in items])
        rows += [{"metric": "bodies", "value": float(len(items)), "block": block},
                 {"metric": "supervoxels_per_body", "value": float(n.mean()), "block": block},
                 {"metric": "single_supervoxel_bodies", "value": float((n == 1).sum()),
                  "block": block},
                 {"metric": "bodies_ending_inside", "value": float(sum(not i[1] for i in items)),
                  "block": block}]
    if g.num_rows == 0:
        raise WorkspaceError("agglomerate: no supervoxels")
    rows += [{"metric": "bodies", "value": float(g.num_rows), "region": "volume"},
             {"metric": "merge_threshold", "value": p.threshold, "region": "volume"}]
    return rows
