"""The graph: schema, loading, versions, lineage, consistency, read-only Cypher (real Neo4j)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import zarr
from graph_helpers import V1, V2, counts, workspace_with
from typer.testing import CliRunner

from cxgraph.errors import GraphError, InputDataError
from cxgraph.graph import queries as Q
from cxgraph.graph.consistency import check_graph
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.snapshot import from_ground_truth, from_workspace, make_snapshot
from cxgraph.graph.store import schema_files


def test_schema_applies_in_order_and_twice_without_change(graph):
    files = schema_files()
    assert [f.version for f in files] == sorted(f.version for f in files)
    before = graph.read("SHOW CONSTRAINTS YIELD name RETURN count(*)").rows[0][0]
    indexes = graph.read("SHOW INDEXES YIELD name RETURN count(*)").rows[0][0]
    assert graph.apply_schema() == []
    assert graph.read("SHOW CONSTRAINTS YIELD name RETURN count(*)").rows[0][0] == before
    assert graph.read("SHOW INDEXES YIELD name RETURN count(*)").rows[0][0] == indexes
    assert graph.schema_version() == files[-1].version
    names = {r[0] for r in graph.read("SHOW CONSTRAINTS YIELD name RETURN name").rows}
    assert {"segment_body_id", "synapse_id_type", "supervoxel_sv_id"} <= names


def test_load_from_workspace_and_reload_changes_nothing(graph, tmp_path):
    ws = workspace_with(tmp_path, V1)
    r1 = load_snapshot(graph, from_workspace(ws))
    assert (r1.version, r1.reloaded, r1.bodies, r1.synapses) == (1, False, 3, 6)
    c1 = counts(graph)
    r2 = load_snapshot(graph, from_workspace(ws))
    assert (r2.version, r2.reloaded) == (1, True)
    assert counts(graph) == c1
    # neuPrint core as expected
    assert graph.read("MATCH (s:Synapse) RETURN count(s)").rows[0][0] == 12
    assert graph.read("MATCH (:Segment {bodyId: 100})-[e:ConnectsTo]->(:Segment {bodyId: 200}) "
                      "RETURN e.weight").rows == [[3]]
    body = graph.read("MATCH (s:Segment {bodyId: 100}) RETURN s.pre, s.post, s.size, "
                      "s:Neuron").rows[0]
    assert body == [3, 1, 60, True]  # size = sum of its supervoxels' sizes 10+20+30
    meta = graph.read("MATCH (m:Meta) RETURN m.totalPreCount, m.totalPostCount, "
                      "m.currentVersion").rows[0]
    assert meta == [6, 6, 1]


def test_synapse_location_is_xyz_from_zyx_columns(graph, tmp_path):
    load_snapshot(graph, from_workspace(workspace_with(tmp_path, V1)))
    loc = graph.read("MATCH (s:Synapse {synapseId: 2, type: 'pre'}) "
                     "RETURN s.location.x, s.location.y, s.location.z").rows[0]
    assert loc == [200.0, 20.0, 2.0]  # table: pre_z=2, pre_y=20, pre_x=200


def test_consistency_passes_and_catches_a_corrupted_weight(graph, tmp_path):
    ws = workspace_with(tmp_path, V1)
    load_snapshot(graph, from_workspace(ws))
    report = check_graph(graph, ws.tables_dir)
    assert report.ok, report.summary()
    assert {c.name for c in report.checks} >= {"connects_to_weight", "body_synapse_counts",
                                               "synapse_bodies", "connections_table"}
    graph.write("MATCH (:Segment {bodyId: 100})-[e:ConnectsTo]->(:Segment {bodyId: 200}) "
                "SET e.weight = 4")
    bad = {c.name: c for c in check_graph(graph, ws.tables_dir).failed()}
    assert set(bad) == {"connects_to_weight"}
    assert bad["connects_to_weight"].examples[0]["pre"] == 100
    graph.write("MATCH (s:Synapse {synapseId: 4, type: 'pre'})<-[c:Contains]-() DELETE c")
    bad = {c.name for c in check_graph(graph, ws.tables_dir).failed()}
    assert {"synapse_bodies", "body_synapse_counts"} <= bad


def test_second_version_keeps_old_answers_as_of(graph, tmp_path):
    load_snapshot(graph, from_workspace(workspace_with(tmp_path / "a", V1)))
    c_before = counts(graph)
    r = load_snapshot(graph, from_workspace(workspace_with(tmp_path / "b", V2)))
    assert (r.version, r.retired_bodies, r.created_bodies) == (2, 1, 2)
    assert counts(graph) != c_before

    def partners(as_of):
        return sorted((row[0], row[1], row[2]) for row in
                      Q.run(graph, "partners", {"bodyId": 200, "asOf": as_of}).rows)

    assert partners(1) == [(100, "upstream", 3), (300, "downstream", 2)]
    assert partners(None) == partners(2) == [(101, "upstream", 2), (102, "upstream", 1),
                                             (300, "downstream", 2)]
    old = Q.run(graph, "synapses_of_body", {"bodyId": 100, "asOf": 1}).rows
    assert [(row[0], row[1], row[4]) for row in old] == [(1, "pre", 200), (2, "pre", 200),
                                                          (3, "pre", 200), (6, "post", 300)]
    assert Q.run(graph, "synapses_of_body", {"bodyId": 100}).rows == []
    retired = graph.read("MATCH (s:Segment {bodyId: 100}) RETURN s.validFrom, s.validTo, "
                         "s:Neuron").rows
    assert retired == [[1, 2, False]]
    # re-loading version 2 changes nothing; the graph stays consistent
    c2 = counts(graph)
    assert load_snapshot(graph, from_workspace(workspace_with(tmp_path / "b", V2))).reloaded
    assert counts(graph) == c2
    assert check_graph(graph).ok
    # version 1's tables again would bring back body 100 (retired in version 2): refused
    # before anything is written, no half-made version 3
    with pytest.raises(GraphError, match="reappear.*nothing was written"):
        load_snapshot(graph, from_workspace(workspace_with(tmp_path / "a", V1)))
    assert counts(graph) == c2
    assert graph.read("MATCH (v:Version) RETURN max(v.version)").rows == [[2]]


def test_lineage_queries_answer_exactly(graph, tmp_path):
    load_snapshot(graph, from_workspace(workspace_with(tmp_path / "a", V1)))
    load_snapshot(graph, from_workspace(workspace_with(tmp_path / "b", V2)))
    # which body did supervoxel 3 belong to at version v
    assert Q.run(graph, "supervoxel_body", {"svId": 3, "asOf": 1}).rows == [[100, 1, 2]]
    assert Q.run(graph, "supervoxel_body", {"svId": 3}).rows == [[102, 2, None]]
    # which operations made body 102 and what it replaced
    lin = Q.run(graph, "body_lineage", {"bodyId": 102}).records()
    assert [(r["bodyId"], r["distance"], r["createdBy"]) for r in lin] == [
        (102, 0, "v2:rerun"), (100, 1, "v1:agglomerate")]
    assert sorted(lin[1]["supersededBy"]) == [101, 102]
    # which merge joined supervoxels 1 and 3 (version 1): path 1-2-3, weakest is 2-3
    m = Q.run(graph, "merge_joining", {"svA": 1, "svB": 3, "asOf": 1}).records()[0]
    assert m["hops"] == 2
    assert (m["weakest"]["svA"], m["weakest"]["svB"], m["weakest"]["affinity"]) == (2, 3, 0.6)
    assert m["weakest"]["block"] == 7 and m["weakest"]["stageRun"] == "run-1"
    assert m["joining"]["step"] == 2
    # now they are in different bodies: no merge joins them
    assert Q.run(graph, "merge_joining", {"svA": 1, "svB": 3}).rows == []


def test_read_only_cypher_rejects_writes_and_times_out(graph):
    with pytest.raises(GraphError, match="read-only"):
        graph.analyst("CREATE (n:Intruder) RETURN n")
    with pytest.raises(GraphError, match="read-only"):
        graph.analyst("MATCH (n) DETACH DELETE n")
    with pytest.raises(GraphError, match="timed out"):
        graph.analyst("UNWIND range(1, 100000000) AS i WITH i WHERE i % 7 = 99 "
                      "RETURN count(*)", timeout_s=0.5)
    assert graph.read("MATCH (n:Intruder) RETURN count(n)").rows == [[0]]
    assert graph.analyst("RETURN $x + 1 AS y", {"x": 41}).rows == [[42]]


def test_cli_load_cypher_and_check(graph, tmp_path, monkeypatch):
    from cxgraph.cli import app

    conn = graph.conn
    monkeypatch.setenv("NEO4J_URI", conn.uri)
    monkeypatch.setenv("NEO4J_USER", conn.user)
    monkeypatch.setenv("NEO4J_PASSWORD", conn.password)
    ws = workspace_with(tmp_path, V1)
    runner = CliRunner()
    res = runner.invoke(app, ["load", "--workspace", str(ws.root)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("graph: ran graph-")
    assert graph.read("MATCH (s:Synapse {type: 'pre'}) RETURN count(s)").rows[0][0] == 6
    res = runner.invoke(app, ["cypher", "--workspace", str(ws.root),
                              "MATCH (n:Segment {bodyId: $id}) RETURN n.pre AS pre",
                              "--param", "id=100", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"pre": 3}]
    res = runner.invoke(app, ["cypher", "--workspace", str(ws.root), "partners",
                              "-p", "bodyId=200", "-f", "csv"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "partner,direction,weight,type,instance"
    res = runner.invoke(app, ["cypher", "--workspace", str(ws.root), "CREATE (n:X)"])
    assert res.exit_code != 0 and "read-only" in str(res.exception)
    out = tmp_path / "r.parquet"
    res = runner.invoke(app, ["cypher", "-w", str(ws.root), "MATCH (s:Synapse) RETURN "
                              "s.synapseId AS id", "-f", "parquet", "-o", str(out)])
    assert res.exit_code == 0 and pl.read_parquet(out).height == 12
    assert runner.invoke(app, ["check", "--workspace", str(ws.root)]).exit_code == 0


def test_ground_truth_loader(graph, tmp_path):
    gt = tmp_path / "phantom" / "gt"
    gt.mkdir(parents=True)
    labels = np.zeros((4, 8, 8), np.uint64)
    labels[:, :4] = 5
    labels[:, 4:, :3] = 9
    arr = zarr.create_array(str(gt / "labels.zarr"), shape=labels.shape, dtype=labels.dtype,
                            chunks=(2, 8, 8))
    arr[:] = labels
    arr.attrs["voxel_size"] = [40.0, 8.0, 8.0]
    pl.DataFrame({"synapse_id": [1, 2], "pre_id": [5, 9], "post_id": [9, 5],
                  "pre_z": [1, 2], "pre_y": [3, 5], "pre_x": [1, 1],
                  "post_z": [1, 2], "post_y": [4, 4], "post_x": [1, 1]}).write_parquet(
        gt / "synapses.parquet")
    snap = from_ground_truth(tmp_path / "phantom")
    load_snapshot(graph, snap)
    sizes = dict(graph.read("MATCH (s:Segment) RETURN s.bodyId, s.size").rows)
    assert sizes == {5: int((labels == 5).sum()), 9: int((labels == 9).sum())}
    assert graph.read("MATCH (m:Meta) RETURN m.voxelSize").rows == [[[8.0, 8.0, 40.0]]]
    assert check_graph(graph).ok


def test_bad_tables_get_clear_errors():
    with pytest.raises(InputDataError, match="lacks column"):
        make_snapshot("pipeline", "t", synapses=pl.DataFrame({"synapse_id": [1]}))
    dup = V1["synapses"].with_columns(pl.lit(1).alias("synapse_id"))
    with pytest.raises(InputDataError, match="unique"):
        make_snapshot("pipeline", "t", synapses=dup)


def test_named_queries_have_headers():
    qs = Q.named_queries()
    for name in ("partners", "connections_between", "synapses_of_body", "supervoxel_body",
                 "body_lineage", "merge_joining", "synapses_of_body_neuprint"):
        q = qs[name]
        assert q.question.endswith("?") or "?" in q.question, name
        assert all(p.type != "any" for p in q.params), name
    with pytest.raises(GraphError, match="needs \\$bodyId"):
        qs["partners"].bind({})
    with pytest.raises(GraphError, match="no parameter"):
        qs["partners"].bind({"bodyId": 1, "nope": 2})
