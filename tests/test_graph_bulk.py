"""The bulk first load (neo4j-admin import) writes the same graph as the Bolt loader.

Slow: it starts its own managed server (the importer needs one it may stop)."""

from __future__ import annotations

import pytest
from graph_helpers import V1, V2, counts, workspace_with

from cxgraph import neo4j_server
from cxgraph.config import Config
from cxgraph.graph import queries as Q
from cxgraph.graph.bulk import bulk_load_workspace
from cxgraph.graph.consistency import check_graph
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.snapshot import from_workspace
from cxgraph.graph.store import GraphStore

pytestmark = pytest.mark.slow


def test_bulk_import_equals_bolt_load_and_accepts_a_second_version(graph, tmp_path,
                                                                   monkeypatch):
    for k in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    load_snapshot(graph, from_workspace(workspace_with(tmp_path / "bolt", V1)))
    bolt_counts = counts(graph)

    ws = workspace_with(tmp_path / "bulk", V1)
    ws.set_config(Config().with_overrides(["neo4j.heap_mb=512", "neo4j.pagecache_mb=128"]))
    server = neo4j_server.managed_server(ws)
    try:
        report = bulk_load_workspace(ws, from_workspace(ws), ws.config["graph"])
        assert report.synapses == 6 and report.phases["neo4j_admin_import"] > 0
        with GraphStore(server.connection()) as store:
            assert counts(store) == bolt_counts
            assert check_graph(store, ws.tables_dir).ok
            assert sorted(tuple(r[:3]) for r in Q.run(store, "partners",
                                                       {"bodyId": 200}).rows) == [
                (100, "upstream", 3), (300, "downstream", 2)]
            loc = store.read("MATCH (s:Synapse {synapseId: 2, type: 'pre'}) "
                             "RETURN s.location.x, s.location.z").rows[0]
            assert loc == [200.0, 2.0]
            # a later version goes through Bolt and continues the intervals
            r2 = load_snapshot(store, from_workspace(workspace_with(tmp_path / "v2", V2)))
            assert (r2.version, r2.retired_bodies, r2.created_bodies) == (2, 1, 2)
            assert Q.run(store, "supervoxel_body", {"svId": 3, "asOf": 1}).rows[0][0] == 100
            assert check_graph(store).ok
    finally:
        server.stop()
