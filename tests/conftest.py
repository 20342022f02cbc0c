"""Shared fixtures. Tests that touch the graph run against a real Neo4j server:
the project-managed one (started once per test session), or the one named by
NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD."""

from __future__ import annotations

import pytest

from cxgraph.config import Neo4jParams
from cxgraph.neo4j_server import Connection, ManagedServer, external_connection


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory) -> ManagedServer | None:
    """The managed server of this test session (None when NEO4J_URI names another)."""
    if external_connection(Neo4jParams()):
        yield None
        return
    params = Neo4jParams(heap_mb=768, pagecache_mb=256, start_timeout_s=300)
    server = ManagedServer(tmp_path_factory.mktemp("neo4j"), params)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def stop_workspace_servers(tmp_path_factory):
    """A workspace that ran the graph stage on its own managed Neo4j leaves it running (by
    design: it outlives the command); stop every one this session left behind (each held
    ~0.9 GB until the machine's next reboot)."""
    yield
    for record in tmp_path_factory.getbasetemp().rglob("neo4j/server.json"):
        ManagedServer(record.parent, Neo4jParams()).stop()


@pytest.fixture(scope="session")
def neo4j_connection(neo4j_server) -> Connection:
    return external_connection(Neo4jParams()) or neo4j_server.connection()


@pytest.fixture
def graph(neo4j_connection):
    """A GraphStore on the test server with the schema applied and the database emptied."""
    from cxgraph.graph import GraphStore

    store = GraphStore(neo4j_connection, batch_size=500, query_timeout_s=60.0)
    store.clear()
    store.apply_schema()
    yield store
    store.close()


@pytest.fixture
def on_test_server(graph, monkeypatch):
    """``graph``, and the environment pointing the workspace's Neo4j at the test server,
    for code that opens the workspace's graph itself (the graph stage, the CLI)."""
    conn = graph.conn
    for key, value in (("NEO4J_URI", conn.uri), ("NEO4J_USER", conn.user),
                       ("NEO4J_PASSWORD", conn.password)):
        monkeypatch.setenv(key, value)
    return graph
