"""The managed Neo4j server: real, authenticated, and reporting what it is."""

from __future__ import annotations

import neo4j
import neo4j.exceptions
import pytest

from cxgraph.config import Neo4jParams
from cxgraph.errors import Neo4jServerError
from cxgraph.neo4j_server import Connection, ManagedServer, server_info


def test_server_reports_community_5_26_with_apoc(neo4j_connection):
    info = server_info(neo4j_connection)
    assert info["version"].startswith("5.26.")
    assert info["edition"] == "community"
    assert info["apoc"] and info["apoc"].startswith("5.26.")


def test_write_and_read_back(neo4j_connection):
    with neo4j_connection.driver() as drv:
        drv.execute_query("MERGE (n:RoundTrip {key: $k}) SET n.value = $v", k="rt", v=42)
        rec = drv.execute_query("MATCH (n:RoundTrip {key: $k}) RETURN n.value AS v", k="rt").records
        drv.execute_query("MATCH (n:RoundTrip) DETACH DELETE n")
    assert [r["v"] for r in rec] == [42]


def test_connection_without_password_is_refused(neo4j_connection):
    for auth in [("neo4j", "not-the-password"), None]:
        with neo4j.GraphDatabase.driver(neo4j_connection.uri, auth=auth) as drv:
            with pytest.raises((neo4j.exceptions.AuthError, neo4j.exceptions.ClientError)):
                drv.verify_connectivity()
                drv.execute_query("RETURN 1")


def test_wrong_password_gets_a_clear_error(neo4j_connection):
    bad = Connection(neo4j_connection.uri, neo4j_connection.user, "wrong-password")
    with pytest.raises(Neo4jServerError, match="wrong password"):
        server_info(bad)


def test_password_file_is_private(neo4j_server):
    if neo4j_server is None:
        pytest.skip("external Neo4j in use")
    assert neo4j_server.password_file.stat().st_mode & 0o777 == 0o600
    assert len(neo4j_server.password()) >= 24


def test_managed_server_binds_loopback_only(neo4j_server):
    if neo4j_server is None:
        pytest.skip("external Neo4j in use")
    assert neo4j_server.record()["uri"].startswith("bolt://127.0.0.1:")
    conf = (neo4j_server.dir / "conf" / "neo4j.conf").read_text()
    assert "dbms.security.auth_enabled=true" in conf
    assert "server.http.enabled=false" in conf


def test_port_in_use_is_reported(neo4j_server, tmp_path):
    if neo4j_server is None:
        pytest.skip("external Neo4j in use")
    port = neo4j_server.record()["port"]
    other = ManagedServer(tmp_path / "n", Neo4jParams(port=port))
    with pytest.raises(Neo4jServerError, match="in use"):
        other.start()
