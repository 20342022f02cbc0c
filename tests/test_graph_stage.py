"""The L5 ``graph`` stage through the engine: identity, stamp in the graph, L5 quality.

The stage has no blocks, so the block properties of the stage contract
(tests/test_stage_contract.py) do not apply; the others are checked here: a no-op
re-run does nothing, changed tables give a new version, a lost output (a cleared
graph) is loaded again, a parameter of another stage leaves it alone.
"""

from __future__ import annotations

import time

import polars as pl
from bolt_proxy import BoltProxy
from graph_helpers import V1, V2, counts, workspace_with

from cxgraph.config import Neo4jParams
from cxgraph.provenance import ProvenanceStore
from pipeline import registry


def run(ws):
    return registry.run_pipeline(ws, only=["graph"])[-1]


def test_graph_stage_loads_stamps_and_records_l5_quality(on_test_server, tmp_path):
    graph = on_test_server
    # supervoxel 6 lies in block 8, which produced no synapse: its L5 rows are 0s
    sv = V1["supervoxels"].with_columns(
        pl.when(pl.col("sv_id") == 6).then(8).otherwise(pl.col("block")).alias("block"))
    ws = workspace_with(tmp_path, {**V1, "supervoxels": sv})
    first = run(ws)
    assert first.action == "ran"
    meta = graph.read("MATCH (m:Meta) RETURN m.stageRun AS run, m.currentVersion AS v").records()
    assert meta == [{"run": first.stage_run_id, "v": 1}]
    q = {(r[0], r[1], r[2]): r[3] for r in ProvenanceStore(ws.provenance_path).execute(
        "SELECT metric, block, region, value FROM quality WHERE layer = 'L5'")}
    # V1: synapses 100->200 x3, 200->300 x2, 300->100 x1, all from block 7
    assert q[("synapses", 7, None)] == 6 and q[("connections", 7, None)] == 3
    assert q[("bodies", 7, None)] == 3 and q[("connections_per_neuron", 7, None)] == 1.0
    assert q[("synapses", 8, None)] == 0 and q[("connections", 8, None)] == 0
    assert q[("synapses", None, "volume")] == 6 and q[("consistency_violations", None,
                                                        "volume")] == 0
    assert run(ws).action == "reused"  # nothing changed
    ws.set_config(ws.config.with_overrides(["align.blend_px=4"]))  # not the stage's
    assert run(ws).action == "reused"


def test_graph_stage_reloads_changed_tables_and_a_cleared_graph(on_test_server, tmp_path):
    graph = on_test_server
    ws = workspace_with(tmp_path, V1)
    run(ws)
    for name, df in V2.items():  # a re-run of agglomeration splits body 100
        ws.write_table(name, df.to_arrow())
    second = run(ws)
    assert second.action == "ran"
    assert graph.read("MATCH (m:Meta) RETURN m.currentVersion").rows[0][0] == 2
    graph.clear()
    assert run(ws).action == "ran"  # the stamp went with the graph
    assert graph.read("MATCH (s:Segment {bodyId: 101}) RETURN count(s)").rows[0][0] == 1


def test_cxgraph_load_with_neo4j_gone_is_one_error_line_and_reload_is_exact(
        graph, tmp_path, monkeypatch, capsys):
    """Issue 14, the same case through the command line on the default settings: `cxgraph
    load` with the server gone mid-load ends in one `error:` line within `[neo4j] retry_s`
    (not a raw ServiceUnavailable after ~60 s); `cxgraph load` again, the server back,
    gives exactly the graph of a clean load."""
    from test_bad_inputs import cli

    ws = workspace_with(tmp_path, V1)

    def via(proxy: BoltProxy) -> None:
        monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NEO4J_USER", graph.conn.user)
        monkeypatch.setenv("NEO4J_PASSWORD", graph.conn.password)

    clean = BoltProxy(graph.conn.uri)  # a clean load, to know its size and its graph
    via(clean)
    assert cli(["load", "-w", ws.root, "--no-check"], capsys)[0] == 0
    clean_counts, clean_bytes = counts(graph), clean.sent
    clean.cut()
    graph.clear()
    graph.apply_schema()
    dying = BoltProxy(graph.conn.uri)
    dying.cut_after = clean_bytes // 2  # halfway through the load's writes
    via(dying)
    t0 = time.perf_counter()
    code, err = cli(["load", "-w", ws.root, "--no-check"], capsys)
    took = time.perf_counter() - t0
    assert code == 1 and err.startswith("error:") and "Traceback" not in err, err
    assert "stopped answering" in err or "not answering" in err or "unavailable" in err, err
    assert took < 3 * Neo4jParams().retry_s + 15, took  # default budget, not the driver's 2x30 s
    monkeypatch.setenv("NEO4J_URI", graph.conn.uri)
    assert cli(["load", "-w", ws.root, "--no-check"], capsys)[0] == 0
    assert counts(graph) == clean_counts
