"""The L5 ``graph`` stage: the workspace's tables loaded into Neo4j as a graph version.

No blocks: ``finalize`` loads ``cxgraph.graph.snapshot.from_workspace`` (synapses,
supervoxels, merge history, bodies, operations) with ``load_snapshot`` — a new
version when the tables changed, nothing when they did not — runs the
consistency checks, and records L5 quality from the graph itself, so the
traceback starts from what analysts see:

- per block (the block that produced the synapse; 0 for a block without any):
  ``synapses`` (post sites), ``bodies`` (distinct pre and post bodies),
  ``connections`` (distinct pre→post pairs), ``connections_per_neuron`` (pairs per
  distinct body; 0 without any, as the traceback's count from the tables);
- for the whole volume: ``neurons``, ``connections``, ``synapses``,
  ``connections_per_neuron``, ``consistency_violations``.

Its output is the graph: the stamp lives on the dataset's ``(:Meta)`` node
(``stageRun``, ``outputHash`` = the snapshot's fingerprint) and, for the managed
server, in ``WS/neo4j/graph_stamp.json`` too, so a no-op ``cxgraph run`` need not
start the server to know the graph is current.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cxgraph.graph.params import GraphParams
from cxgraph.workspace import Workspace, atomic_write_bytes
from pipeline.engine import StageContext

log = logging.getLogger(__name__)

STAMP_FILE = "graph_stamp.json"

_BLOCK_STATS = """
MATCH (s:Synapse {type: 'post'}) WHERE s.validTo IS NULL
MATCH (s)<-[:SynapsesTo]-(p:Synapse)
MATCH (post:Segment)-[:Contains]->(:SynapseSet)-[c:Contains]->(s) WHERE c.validTo IS NULL
  AND post.validTo IS NULL
MATCH (pre:Segment)-[:Contains]->(:SynapseSet)-[c2:Contains]->(p) WHERE c2.validTo IS NULL
  AND pre.validTo IS NULL
WITH s.block AS block, count(s) AS synapses, collect(DISTINCT pre.bodyId) AS pres,
     collect(DISTINCT post.bodyId) AS posts,
     count(DISTINCT [pre.bodyId, post.bodyId]) AS connections
RETURN block, synapses, pres, posts, connections
ORDER BY block
"""

_TOTALS = """
CALL () { MATCH (n:Neuron) WHERE n.validTo IS NULL RETURN count(n) AS neurons }
CALL () { MATCH (:Segment)-[e:ConnectsTo]->(:Segment) WHERE e.validTo IS NULL
          RETURN count(e) AS connections }
CALL () { MATCH (s:Synapse {type: 'post'}) WHERE s.validTo IS NULL RETURN count(s) AS synapses }
RETURN neurons, connections, synapses
"""


def _store(ws: Workspace, start: bool = True):
    from cxgraph.graph.store import GraphStore

    return GraphStore.for_workspace(ws, start=start)


def finalize(ctx: StageContext, plan: None) -> None:
    from cxgraph.errors import GraphError
    from cxgraph.graph.consistency import check_graph
    from cxgraph.graph.loader import load_snapshot
    from cxgraph.graph.snapshot import from_workspace

    params: GraphParams = ctx.params
    snap = from_workspace(ctx.ws)
    with _store(ctx.ws) as store:
        report = load_snapshot(store, snap, params, note=f"stage run {ctx.run.stage_run_id}")
        log.info("graph version %d%s", report.version, " (unchanged)" if report.reloaded else "")
        bad = 0
        if params.check_after_load:
            checks = check_graph(store, ctx.ws.tables_dir)
            bad = sum(c.violations for c in checks.checks)
            if not checks.ok:
                raise GraphError(f"the graph does not match the tables after the load:\n"
                                 f"{checks.summary()}")
        ctx.quality_rows(_quality(store, bad, _block_ids(ctx)))
        stamp = {"stage": ctx.stage.name, "stage_run_id": ctx.run.stage_run_id,
                 "output_hash": snap.fingerprint(), "version": report.version,
                 "dataset": params.dataset}
        store.write("MATCH (m:Meta {dataset: $d}) SET m.stageRun = $run, m.outputHash = $h",
                    {"d": params.dataset, "run": stamp["stage_run_id"],
                     "h": stamp["output_hash"]})
    _write_local_stamp(ctx.ws, stamp)


def _block_ids(ctx: StageContext) -> list[int]:
    """Every block of the volume: those that made supervoxels (the grid every blockwise
    stage shares)."""
    import pyarrow.compute as pc

    return sorted(pc.unique(ctx.read_table("supervoxels")["block"]).to_pylist())


def _quality(store, violations: int, blocks: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    records = store.read(_BLOCK_STATS).records()
    # a block without a synapse is a 0, not a missing unit: leaving it out would compare
    # only the blocks that have synapses and hide a region's deficit
    seen = {r["block"] for r in records}
    for b in blocks:
        if b not in seen:
            rows += [{"metric": m, "value": 0, "block": b}
                     for m in ("synapses", "bodies", "connections", "connections_per_neuron")]
    for r in records:
        distinct = len(set(r["pres"]) | set(r["posts"]))
        rows += [
            {"metric": "synapses", "value": r["synapses"], "block": r["block"]},
            {"metric": "bodies", "value": distinct, "block": r["block"]},
            {"metric": "connections", "value": r["connections"], "block": r["block"]},
            {"metric": "connections_per_neuron", "block": r["block"],
             "value": r["connections"] / distinct if distinct else 0.0},
        ]
    t = store.read(_TOTALS).records()[0]
    rows += [
        {"metric": "neurons", "value": t["neurons"], "region": "volume"},
        {"metric": "connections", "value": t["connections"], "region": "volume"},
        {"metric": "synapses", "value": t["synapses"], "region": "volume"},
        {"metric": "connections_per_neuron", "region": "volume",
         "value": t["connections"] / t["neurons"] if t["neurons"] else 0.0},
        {"metric": "consistency_violations", "value": violations, "region": "volume"},
    ]
    return rows


def _write_local_stamp(ws: Workspace, stamp: dict[str, Any]) -> None:
    atomic_write_bytes(ws.neo4j_dir / STAMP_FILE, json.dumps(stamp).encode())


def read_graph_stamp(ws: Workspace, name: str) -> dict[str, Any] | None:
    """The graph's stamp: from Neo4j when it answers without being started (an external
    server, or the managed one running), else from the managed server's local record."""
    from cxgraph.neo4j_server import external_connection, managed_server

    params = ws.config["neo4j"]
    running = external_connection(params) is not None or managed_server(ws).pid() is not None
    if not running:
        path = ws.neo4j_dir / STAMP_FILE
        return json.loads(path.read_text()) if path.exists() else None
    dataset = ws.config["graph"].dataset
    with _store(ws, start=False) as store:
        rows = store.read("MATCH (m:Meta {dataset: $d}) RETURN m.stageRun AS run, "
                          "m.outputHash AS h", {"d": dataset}).records()
    if not rows or not rows[0]["run"]:
        return None
    return {"stage_run_id": rows[0]["run"], "output_hash": rows[0]["h"], "dataset": dataset}
