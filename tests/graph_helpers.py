"""Shared inputs of the graph tests: a hand-made two-version lineage."""

from __future__ import annotations

import polars as pl

from cxgraph.workspace import Workspace

# A hand-made lineage. Version 1: supervoxels 1,2,3 -> body 100 (merges 1-2 at affinity
# 0.9, step 0; 2-3 at 0.6, step 2), 4,5 -> body 200 (merge 4-5 at 0.8, step 1), 6 -> 300.
# Synapses: 100->200 x3, 200->300 x2, 300->100 x1.
# Version 2 re-runs agglomeration: body 100 splits into 101 {1, 2} and 102 {3}.
V1_BODY = {1: 100, 2: 100, 3: 100, 4: 200, 5: 200, 6: 300}
V2_BODY = {1: 101, 2: 101, 3: 102, 4: 200, 5: 200, 6: 300}
# (synapse id, pre supervoxel, post supervoxel)
SYNAPSE_SVS = [(1, 1, 4), (2, 2, 4), (3, 3, 5), (4, 4, 6), (5, 5, 6), (6, 6, 1)]


def tables(body_of: dict[int, int], run: str, merges: list[tuple]) -> dict[str, pl.DataFrame]:
    syn = pl.DataFrame([
        dict(synapse_id=i, pre_body=body_of[a], post_body=body_of[b], pre_sv=a, post_sv=b,
             pre_z=i, pre_y=10 * i, pre_x=100 * i, post_z=i + 1, post_y=10 * i, post_x=100 * i,
             confidence=0.5 + 0.05 * i, block=7, stage_run=run)
        for i, a, b in SYNAPSE_SVS])
    sv = pl.DataFrame({"sv_id": list(body_of), "body_id": list(body_of.values()),
                       "size": [10 * k for k in body_of], "block": [7] * 6,
                       "stage_run": [run] * 6})
    mg = pl.DataFrame([dict(sv_a=a, sv_b=b, affinity=aff, step=st, block=7, stage_run=run)
                       for a, b, aff, st in merges])
    conns = syn.group_by("pre_body", "post_body").agg(pl.len().alias("weight")).rename(
        {"pre_body": "pre", "post_body": "post"})
    sizes: dict[int, int] = {}
    for k, b in body_of.items():
        sizes[b] = sizes.get(b, 0) + 10 * k
    bodies = pl.DataFrame({"body_id": list(sizes), "size": list(sizes.values()),
                           "block": [7] * len(sizes), "stage_run": [run] * len(sizes)})
    ops = pl.DataFrame(schema={"operation_id": pl.Utf8, "kind": pl.Utf8, "user": pl.Utf8,
                               "timestamp": pl.Utf8, "params": pl.Utf8, "stage_run": pl.Utf8,
                               "created": pl.List(pl.Int64), "retired": pl.List(pl.Int64)})
    return {"synapses": syn, "supervoxels": sv, "agglomeration": mg, "connections": conns,
            "bodies": bodies, "operations": ops}


V1 = tables(V1_BODY, "run-1", [(1, 2, 0.9, 0), (2, 3, 0.6, 2), (4, 5, 0.8, 1)])
V2 = tables(V2_BODY, "run-2", [(1, 2, 0.9, 0), (4, 5, 0.8, 1)])


def workspace_with(tmp_path, t: dict[str, pl.DataFrame]) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    for name, df in t.items():
        ws.write_table(name, df.to_arrow())
    return ws


def counts(store) -> tuple:
    nodes = store.read("MATCH (n) RETURN count(n)").rows[0][0]
    rels = store.read("MATCH ()-[r]->() RETURN count(r)").rows[0][0]
    return nodes, rels
