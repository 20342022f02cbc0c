"""asOf after a second version, and the time limit (Neo4j transaction timeout), through
the ASGI app on the real Neo4j.

Version 2 splits body C of the three-neuron graph (tests/test_api.py) into D (supervoxel
31) and E (supervoxel 32): synapses 104, 105 now go B -> D, 106 goes A -> E, 107 E -> A.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import polars as pl
import pytest

from cxgraph.api import create_app
from cxgraph.api.auth import TokenStore
from cxgraph.api.params import ApiParams
from cxgraph.graph import GraphStore
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.snapshot import make_snapshot
from cxgraph.workspace import Workspace

A, B, C, D, E = (9007199254740993, 9007199254740995, 9007199254740997, 9007199254740999,
                 9007199254741001)
LOC = {101: (1, 10, 10), 102: (2, 10, 20), 103: (3, 10, 30), 104: (4, 40, 10),
       105: (5, 40, 20), 106: (6, 60, 60), 107: (7, 70, 70)}


def snapshot(edges: list[tuple[int, int, int]], sv_body: dict[int, int], bodies: list[int]):
    syn = pl.DataFrame({
        "synapse_id": [e[0] for e in edges], "pre_body": [e[1] for e in edges],
        "post_body": [e[2] for e in edges], "confidence": [0.9] * len(edges),
        "pre_z": [float(LOC[e[0]][0]) for e in edges],
        "pre_y": [float(LOC[e[0]][1]) for e in edges],
        "pre_x": [float(LOC[e[0]][2]) for e in edges],
        "post_z": [float(LOC[e[0]][0]) for e in edges],
        "post_y": [float(LOC[e[0]][1] + 1) for e in edges],
        "post_x": [float(LOC[e[0]][2]) for e in edges],
    })
    return make_snapshot(
        "pipeline", "versions test", synapses=syn,
        bodies=pl.DataFrame({"body_id": bodies, "type": ["T"] * len(bodies)}),
        supervoxels=pl.DataFrame({"sv_id": list(sv_body), "body_id": list(sv_body.values()),
                                  "size": [10] * len(sv_body)}))


V1 = snapshot([(101, A, B), (102, A, B), (103, A, B), (104, B, C), (105, B, C), (106, A, C),
               (107, C, A)], {11: A, 12: A, 21: B, 31: C, 32: C}, [A, B, C])
V2 = snapshot([(101, A, B), (102, A, B), (103, A, B), (104, B, D), (105, B, D), (106, A, E),
               (107, E, A)], {11: A, 12: A, 21: B, 31: D, 32: E}, [A, B, D, E])


class SlowStore(GraphStore):
    """The real store on the real server, with every read made slow by the server itself
    (``apoc.util.sleep``, which stops when Neo4j terminates the transaction)."""

    def read(self, query: str, params: Any = None, timeout_s: float | None = None):
        return super().read("CALL apoc.util.sleep(20000)\n" + query, params, timeout_s)


@pytest.fixture(scope="module")
def two_versions(neo4j_connection, tmp_path_factory):
    store = GraphStore(neo4j_connection)
    store.clear()
    store.apply_schema()
    assert load_snapshot(store, V1).version == 1
    assert load_snapshot(store, V2).version == 2
    ws = Workspace.create(tmp_path_factory.mktemp("api_versions"))
    token, _ = TokenStore.for_workspace(ws.root).create("t", "read")
    app = create_app(ws, store=store, params=ApiParams(timeout_s=10.0))
    yield ws, store, app, token
    app.close()
    store.close()


def post(app, path: str, token: str, body: dict) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://cxgraph.test") as client:
            return await client.post(path, json=body,
                                     headers={"Authorization": f"Bearer {token}"})
    return asyncio.run(go())


def data(setup, query: str) -> dict:
    _, _, app, token = setup
    body = post(app, "/graphql", token, {"query": query}).json()
    assert "errors" not in body, body
    return body["data"]


def test_as_of_returns_the_older_answer(two_versions):
    fields = "{ neuron { bodyId } weight direction }"
    q = f'{{ now: partners(bodyId: "{A}") {fields} v1: partners(bodyId: "{A}", asOf: 1) {fields} }}'
    d = data(two_versions, q)
    assert [(p["neuron"]["bodyId"], p["weight"], p["direction"]) for p in d["v1"]] == [
        (str(B), 3, "DOWNSTREAM"), (str(C), 1, "DOWNSTREAM"), (str(C), 1, "UPSTREAM")]
    assert [(p["neuron"]["bodyId"], p["weight"], p["direction"]) for p in d["now"]] == [
        (str(B), 3, "DOWNSTREAM"), (str(E), 1, "DOWNSTREAM"), (str(E), 1, "UPSTREAM")]

    n = data(two_versions, f"""{{ now: neuron(bodyId: {C}) {{ bodyId }}
        old: neuron(bodyId: {C}, asOf: 1) {{ bodyId validFrom validTo }}
        d1: neuron(bodyId: {D}, asOf: 1) {{ bodyId }} }}""")
    assert n == {"now": None, "old": {"bodyId": str(C), "validFrom": 1, "validTo": 2},
                 "d1": None}

    conns = """{ connections(pre: ["%d"], post: ["%d", "%d"]%s) { items { post weight } } }"""
    assert data(two_versions, conns % (B, C, D, ", asOf: 1"))["connections"]["items"] == [
        {"post": str(C), "weight": 2}]
    assert data(two_versions, conns % (B, C, D, ""))["connections"]["items"] == [
        {"post": str(D), "weight": 2}]

    syn = """{ synapses(bodyId: "%d"%s) { items { synapseId partnerBodyIds } } }"""
    assert data(two_versions, syn % (B, ", asOf: 1"))["synapses"]["items"][-1] == {
        "synapseId": "105", "partnerBodyIds": [str(C)]}
    assert data(two_versions, syn % (B, ""))["synapses"]["items"][-1] == {
        "synapseId": "105", "partnerBodyIds": [str(D)]}

    path = """{ shortestPath(from: "%d", to: "%d"%s) { bodyIds } }"""
    assert data(two_versions, path % (B, A, ", asOf: 1"))["shortestPath"]["bodyIds"] == [
        str(B), str(C), str(A)]
    assert data(two_versions, path % (B, A, ""))["shortestPath"] is None  # B -> D is a dead end

    listing = data(two_versions, "{ a: neurons(asOf: 1) { items { bodyId } } "
                                 "b: neurons { items { bodyId } } }")
    assert [n["bodyId"] for n in listing["a"]["items"]] == [str(A), str(B), str(C)]
    assert [n["bodyId"] for n in listing["b"]["items"]] == [str(A), str(B), str(D), str(E)]


def test_lineage_after_a_split(two_versions):
    d = data(two_versions, f"""{{ old: lineage(bodyId: {C}) {{ validTo supersededBy
            operations {{ kind version createdCount retiredCount }} }}
        old1: lineage(bodyId: {C}, asOf: 1) {{ supersededBy }}
        new: lineage(bodyId: {D}) {{ validFrom supersedes
            supervoxels {{ items {{ svId }} }} }} }}""")
    assert d["old"]["validTo"] == 2 and d["old"]["supersededBy"] == [str(D), str(E)]
    retire = [o for o in d["old"]["operations"] if o["version"] == 2]
    assert retire and retire[0]["retiredCount"] >= 1
    assert d["old1"]["supersededBy"] == []
    assert d["new"] == {"validFrom": 2, "supersedes": [str(C)],
                        "supervoxels": {"items": [{"svId": "31"}]}}


def test_time_limit_graphql(two_versions, neo4j_connection):
    ws, _, _, token = two_versions
    slow = SlowStore(neo4j_connection)
    app = create_app(ws, store=slow, params=ApiParams(timeout_s=0.5))
    try:
        t0 = time.perf_counter()
        body = post(app, "/graphql", token, {"query": f"{{ neuron(bodyId: {A}) {{ bodyId }} }}"})
        elapsed = time.perf_counter() - t0
    finally:
        app.close()
        slow.close()
    err = body.json()["errors"][0]
    assert err["extensions"]["code"] == "LIMIT_EXCEEDED" and err["extensions"]["limit"] == "time"
    assert "0.5 s" in err["message"] and "Hint:" in err["message"]
    assert elapsed < 15  # stopped by the server, not after the 20 s sleep


def test_time_limit_cypher_http(two_versions):
    _, _, app, token = two_versions
    r = post(app, "/cypher", token, {
        "query": "UNWIND range(1, 400000000) AS x WITH x WHERE x % 7 = 99 RETURN count(*)",
        "timeoutS": 0.5})
    assert r.status_code == 400 and r.json()["code"] == "TIME_LIMIT"
    assert "timeout" in r.json()["error"]
