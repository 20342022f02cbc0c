"""The GraphQL / HTTP API on a three-neuron graph in the real Neo4j, through the ASGI app.

Bodies A, B, C (ids above 2**53, so a float-based JSON client would corrupt them)::

    A -> B  synapses 101, 102, 103 (confidence 0.9, 0.8, 0.4)
    B -> C  synapses 104, 105      (0.95, 0.7)
    A -> C  synapse  106           (0.99)
    C -> A  synapse  107           (0.5)

Supervoxels: A = {11, 12} (merged at affinity 0.9), B = {21}, C = {31, 32} (0.6).
Bodies and supervoxels come from stage run "agglomerate", synapses from stage run
"synapses", which read the agglomeration's output (so it is upstream).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from cxgraph.api import create_app
from cxgraph.api.auth import TokenStore
from cxgraph.api.params import ApiParams
from cxgraph.api.schema import sdl
from cxgraph.graph import GraphStore
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.snapshot import make_snapshot
from cxgraph.provenance import stage_run
from cxgraph.workspace import Workspace
from pipeline.engine.blocks import Block, Roi

A, B, C = 9007199254740993, 9007199254740995, 9007199254740997
SDL_FILE = Path(__file__).resolve().parents[1] / "schema" / "graphql" / "schema.graphql"

# (synapse_id, pre body, post body, confidence, pre location z, y, x)
SYNAPSES = [
    (101, A, B, 0.9, (1, 10, 10)), (102, A, B, 0.8, (2, 10, 20)), (103, A, B, 0.4, (3, 10, 30)),
    (104, B, C, 0.95, (4, 40, 10)), (105, B, C, 0.7, (5, 40, 20)),
    (106, A, C, 0.99, (6, 60, 60)), (107, C, A, 0.5, (7, 70, 70)),
]
SV_BODY = {11: A, 12: A, 21: B, 31: C, 32: C}


def synapse_table(rows, stage_run_id: str) -> pl.DataFrame:
    return pl.DataFrame({
        "synapse_id": [r[0] for r in rows], "pre_body": [r[1] for r in rows],
        "post_body": [r[2] for r in rows], "confidence": [r[3] for r in rows],
        "pre_z": [float(r[4][0]) for r in rows], "pre_y": [float(r[4][1]) for r in rows],
        "pre_x": [float(r[4][2]) for r in rows],
        "post_z": [float(r[4][0]) for r in rows], "post_y": [float(r[4][1]) + 1 for r in rows],
        "post_x": [float(r[4][2]) for r in rows],
        "block": [0] * len(rows), "stage_run": [stage_run_id] * len(rows),
    })


def make_v1(runs: dict[str, str]):
    agg = runs["agglomerate"]
    return make_snapshot(
        "pipeline", "three-neuron test",
        synapses=synapse_table(SYNAPSES, runs["synapses"]),
        bodies=pl.DataFrame({"body_id": [A, B, C], "size": [5_000_000_000, 2000, 3000],
                             "status": ["Traced", "Traced", "Orphan"],
                             "type": ["KC", "MBON", "PN"], "stage_run": [agg] * 3,
                             "block": [0, 0, 1]}),
        supervoxels=pl.DataFrame({"sv_id": list(SV_BODY), "body_id": list(SV_BODY.values()),
                                  "size": [10, 20, 30, 40, 50], "block": [0, 0, 0, 1, 1],
                                  "stage_run": [agg] * 5}),
        merges=pl.DataFrame({"sv_a": [11, 31], "sv_b": [12, 32], "affinity": [0.9, 0.6],
                             "step": [0, 1], "block": [0, 1], "stage_run": [agg, agg]}),
    )


def record_stage_runs(ws: Workspace) -> dict[str, str]:
    """Two stage runs in the workspace's provenance store: agglomerate -> synapses."""
    out = ws.root / "agglomeration.bin"
    with stage_run(ws, stage="agglomerate", layer="L3", params={"threshold": 0.5}) as run1:
        out.write_bytes(b"merge history")
        run1.output("agglomeration", out)
        block = Block(0, (0, 0, 0), Roi((0, 0, 0), (8, 64, 64)), Roi((0, 0, 0), (10, 80, 80)))
        run1.block_started(block, worker="w0")
        run1.block_finished(0, {"io_s": 0.25, "compute_s": 1.5, "bytes_read": 100,
                                "bytes_written": 50})
        run1.quality(metric="supervoxels_per_body", value=2.0, block=0)
    with stage_run(ws, stage="synapses", layer="L4", params={"min_confidence": 0.3},
                   inputs={"agglomeration": out}) as run2:
        run2.quality(metric="confidence_mean", value=0.75, block=0)
        run2.quality(metric="confidence_mean", value=0.5, block=1)
    return {"agglomerate": run1.stage_run_id, "synapses": run2.stage_run_id}


class CountingStore(GraphStore):
    """The real GraphStore, counting database reads (to prove batching)."""

    reads = 0

    def read(self, *args: Any, **kwargs: Any):
        type(self).reads += 1
        return super().read(*args, **kwargs)


@dataclasses.dataclass
class World:
    ws: Workspace
    app: Any
    store: CountingStore
    runs: dict[str, str]
    tokens: dict[str, str]
    token_ids: dict[str, str]


PARAMS = ApiParams(max_first=50, max_ids=5, max_depth=6, max_cost=2000, max_aliases=4,
                   max_tokens=400, max_path_hops=4, timeout_s=10.0)


@pytest.fixture(scope="module")
def world(neo4j_connection, tmp_path_factory) -> World:
    store = CountingStore(neo4j_connection)
    store.clear()
    store.apply_schema()
    ws = Workspace.create(tmp_path_factory.mktemp("api_ws"))
    runs = record_stage_runs(ws)
    load_snapshot(store, make_v1(runs))
    store.write("UNWIND $rows AS r MERGE (g:Region {name: r.name}) "
                "SET g.box = r.box, g.flags = r.flags, g.reason = r.reason",
                {"rows": [{"name": "calyx", "box": [0, 0, 0, 8, 64, 64], "flags": [],
                           "reason": None},
                          {"name": "lobe", "box": [0, 64, 0, 8, 128, 64], "flags": ["dim"],
                           "reason": "low contrast"}]})
    tokens, ids = {}, {}
    store_t = TokenStore.for_workspace(ws.root)
    for role in ("read", "write", "admin"):
        tokens[role], rec = store_t.create(f"{role}-user", role)
        ids[role] = rec.token_id
    tokens["revoked"], rec = store_t.create("gone", "admin")
    store_t.revoke(rec.token_id)
    app = create_app(ws, store=store, params=PARAMS)
    yield World(ws, app, store, runs, tokens, ids)
    app.close()
    store.close()


async def _request(app, method: str, path: str, token: str | None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://cxgraph.test") as client:
        return await client.request(method, path, headers=headers, **kw)


def http(app, method: str, path: str, token: str | None = None, **kw) -> httpx.Response:
    return asyncio.run(_request(app, method, path, token, **kw))


def gql(world: World, query: str, variables: dict | None = None, token: str = "read",
        app=None) -> dict:
    r = http(app or world.app, "POST", "/graphql", world.tokens.get(token, token),
             json={"query": query, "variables": variables or {}})
    assert r.status_code == 200, r.text
    return r.json()


def data(world: World, query: str, variables: dict | None = None, token: str = "read") -> dict:
    body = gql(world, query, variables, token)
    assert "errors" not in body, body["errors"]
    return body["data"]


def error(world: World, query: str, variables: dict | None = None, token: str = "read") -> dict:
    body = gql(world, query, variables, token)
    assert body.get("errors"), body
    return body["errors"][0]


# --- queries -------------------------------------------------------------------------------
def test_neuron_exact_ids_and_fields(world):
    d = data(world, """query($id: Id64!) { neuron(bodyId: $id) { bodyId type status size pre
        post upstream downstream stageRun block validFrom validTo } }""", {"id": str(A)})
    assert d["neuron"] == {"bodyId": str(A), "type": "KC", "status": "Traced",
                           "size": 5_000_000_000, "pre": 4, "post": 1, "upstream": 1,
                           "downstream": 4, "stageRun": world.runs["agglomerate"], "block": 0,
                           "validFrom": 1, "validTo": None}
    # an integer literal works too, and an unknown body is null
    assert data(world, f"{{ neuron(bodyId: {B}) {{ bodyId }} }}")["neuron"]["bodyId"] == str(B)
    assert data(world, "{ neuron(bodyId: 42) { bodyId } }")["neuron"] is None
    e = error(world, '{ neuron(bodyId: "12x") { bodyId } }')
    assert "12x" in e["message"]


def test_neurons_filter_and_pagination(world):
    q = """query($f: NeuronFilter, $first: Int!, $after: String) {
        neurons(filter: $f, first: $first, after: $after) {
          items { bodyId } pageInfo { hasNextPage endCursor } } }"""
    p1 = data(world, q, {"first": 2})["neurons"]
    assert [n["bodyId"] for n in p1["items"]] == [str(A), str(B)]
    assert p1["pageInfo"]["hasNextPage"] is True
    p2 = data(world, q, {"first": 2, "after": p1["pageInfo"]["endCursor"]})["neurons"]
    assert [n["bodyId"] for n in p2["items"]] == [str(C)]
    assert p2["pageInfo"]["hasNextPage"] is False

    def ids(f):
        return [n["bodyId"] for n in data(world, q, {"f": f, "first": 10})["neurons"]["items"]]

    assert ids({"type": "MBON"}) == [str(B)]
    assert ids({"status": "Traced"}) == [str(A), str(B)]
    assert ids({"minPre": 3}) == [str(A)]
    assert ids({"minPost": 2}) == [str(B), str(C)]
    assert ids({"minSize": 2500, "maxSize": 10_000}) == [str(C)]
    assert ids({"bodyIds": [str(C), str(A)]}) == [str(A), str(C)]
    assert ids({"region": "nowhere"}) == []
    # a cursor of another field is refused with a message saying so
    bad = error(world, q, {"first": 2, "after": "bm90LWEtY3Vyc29y"})
    assert bad["extensions"]["code"] == "BAD_INPUT"


def test_partners(world):
    q = """query($id: Id64!, $dir: Direction!, $w: Int!) {
        partners(bodyId: $id, direction: $dir, minWeight: $w) {
          neuron { bodyId type } weight direction } }"""

    def run(direction, w=1, body=A):
        return [(p["neuron"]["bodyId"], p["weight"], p["direction"]) for p in
                data(world, q, {"id": str(body), "dir": direction, "w": w})["partners"]]

    assert run("BOTH") == [(str(B), 3, "DOWNSTREAM"), (str(C), 1, "DOWNSTREAM"),
                           (str(C), 1, "UPSTREAM")]
    assert run("DOWNSTREAM", 2) == [(str(B), 3, "DOWNSTREAM")]
    assert run("UPSTREAM") == [(str(C), 1, "UPSTREAM")]
    assert run("UPSTREAM", body=C) == [(str(B), 2, "UPSTREAM"), (str(A), 1, "UPSTREAM")]


def test_connections_paged(world):
    q = """query($pre: [Id64!]!, $post: [Id64!]!, $after: String) {
        connections(pre: $pre, post: $post, first: 2, after: $after) {
          items { pre post weight weightHr preNeuron { type } postNeuron { type } }
          pageInfo { hasNextPage endCursor } } }"""
    v = {"pre": [str(A), str(B)], "post": [str(B), str(C)]}
    p1 = data(world, q, v)["connections"]
    assert [(c["pre"], c["post"], c["weight"]) for c in p1["items"]] == [
        (str(A), str(B), 3), (str(A), str(C), 1)]
    assert p1["items"][0]["preNeuron"] == {"type": "KC"}
    assert p1["items"][0]["postNeuron"] == {"type": "MBON"}
    p2 = data(world, q, {**v, "after": p1["pageInfo"]["endCursor"]})["connections"]
    assert [(c["pre"], c["post"], c["weight"]) for c in p2["items"]] == [(str(B), str(C), 2)]
    assert p2["pageInfo"]["hasNextPage"] is False
    w = data(world, """query($pre: [Id64!]!, $post: [Id64!]!) { connections(pre: $pre,
        post: $post, minWeight: 2) { items { pre post } } }""", v)["connections"]["items"]
    assert [(c["pre"], c["post"]) for c in w] == [(str(A), str(B)), (str(B), str(C))]


def test_synapses_by_body_and_box(world):
    q = """query($id: Id64, $box: BoxInput, $c: Float!, $first: Int!, $after: String) {
        synapses(bodyId: $id, box: $box, minConfidence: $c, first: $first, after: $after) {
          items { synapseId type confidence location { x y z } bodyId partnerBodyIds stageRun }
          pageInfo { hasNextPage endCursor } } }"""
    page = data(world, q, {"id": str(A), "c": 0.0, "first": 3})["synapses"]
    assert [(s["synapseId"], s["type"]) for s in page["items"]] == [
        ("101", "pre"), ("102", "pre"), ("103", "pre")]
    first = page["items"][0]
    assert first["location"] == {"x": 10.0, "y": 10.0, "z": 1.0}
    assert first["partnerBodyIds"] == [str(B)] and first["bodyId"] == str(A)
    assert first["stageRun"] == world.runs["synapses"]
    rest = data(world, q, {"id": str(A), "c": 0.0, "first": 3,
                           "after": page["pageInfo"]["endCursor"]})["synapses"]
    assert [(s["synapseId"], s["type"]) for s in rest["items"]] == [("106", "pre"),
                                                                    ("107", "post")]
    assert rest["items"][1]["partnerBodyIds"] == [str(C)]
    confident = data(world, q, {"id": str(A), "c": 0.85, "first": 10})["synapses"]["items"]
    assert [s["synapseId"] for s in confident] == ["101", "106"]
    # box z in [4, 6), y in [40, 41), x in [0, 100): the pre sides of 104 and 105
    box = {"z0": 4, "y0": 40, "x0": 0, "z1": 6, "y1": 41, "x1": 100}
    inside = data(world, q, {"box": box, "c": 0.0, "first": 10})["synapses"]["items"]
    assert [(s["synapseId"], s["type"], s["bodyId"]) for s in inside] == [
        ("104", "pre", str(B)), ("105", "pre", str(B))]
    assert inside[0]["partnerBodyIds"] == [str(C)]
    both = error(world, q, {"id": str(A), "box": box, "c": 0.0, "first": 1})
    assert "exactly one of bodyId or box" in both["message"]


def test_nested_neuron_fields(world):
    d = data(world, """query($id: Id64!) { neuron(bodyId: $id) {
        partners(direction: DOWNSTREAM, first: 1) { neuron { bodyId } weight }
        synapses(minConfidence: 0.9, first: 1) { items { synapseId }
                                                 pageInfo { hasNextPage } } } }""",
             {"id": str(A)})["neuron"]
    assert d["partners"] == [{"neuron": {"bodyId": str(B)}, "weight": 3}]
    assert d["synapses"] == {"items": [{"synapseId": "101"}], "pageInfo": {"hasNextPage": True}}


def test_shortest_path(world):
    q = """query($a: Id64!, $b: Id64!, $w: Int!) { shortestPath(from: $a, to: $b,
        minWeight: $w) { bodyIds weights length neurons { type } } }"""
    p = data(world, q, {"a": str(C), "b": str(B), "w": 1})["shortestPath"]
    assert p == {"bodyIds": [str(C), str(A), str(B)], "weights": [1, 3], "length": 2,
                 "neurons": [{"type": "PN"}, {"type": "KC"}, {"type": "MBON"}]}
    assert data(world, q, {"a": str(C), "b": str(B), "w": 2})["shortestPath"] is None
    assert data(world, q, {"a": str(A), "b": str(C), "w": 1})["shortestPath"]["bodyIds"] == [
        str(A), str(C)]


def test_lineage(world):
    d = data(world, """query($id: Id64!) { lineage(bodyId: $id) { bodyId validFrom validTo
        supervoxelCount supersedes supersededBy
        supervoxels(first: 1) { items { svId size block stageRun } pageInfo { hasNextPage } }
        merges { items { a b affinity block stageRun } }
        operations { kind version } } }""", {"id": str(A)})["lineage"]
    assert d["supervoxelCount"] == 2 and d["validFrom"] == 1 and d["validTo"] is None
    assert d["supervoxels"] == {"items": [{"svId": "11", "size": 10, "block": 0,
                                           "stageRun": world.runs["agglomerate"]}],
                                "pageInfo": {"hasNextPage": True}}
    assert d["merges"]["items"] == [{"a": "11", "b": "12", "affinity": 0.9, "block": 0,
                                     "stageRun": world.runs["agglomerate"]}]
    assert d["supersedes"] == [] and d["supersededBy"] == []
    assert {"kind": "agglomerate", "version": 1} in d["operations"]
    assert data(world, "{ lineage(bodyId: 5) { bodyId } }")["lineage"] is None


def test_provenance_of_body_and_synapse(world):
    q = """query($id: Id64!, $kind: ObjectKind) { provenance(objectId: $id, kind: $kind) {
        objectId kind stageRunId block
        stageRun { stageRunId stage layer status attempts params paramsHash inputs outputs
                   codeRevision environment device startedAt finishedAt wallS
                   artifacts { role name sha256 } }
        blockRun { blockId status writeRoi readRoi ioS computeS bytesRead worker }
        upstream { stageRunId stage } } }"""
    (body,) = data(world, q, {"id": str(A)})["provenance"]
    run = body["stageRun"]
    assert body["kind"] == "BODY" and body["stageRunId"] == world.runs["agglomerate"]
    assert run["stage"] == "agglomerate" and run["layer"] == "L3" and run["status"] == "done"
    assert run["params"] == {"threshold": 0.5} and run["paramsHash"]
    assert run["codeRevision"] and run["environment"]["python"] and run["device"] == "cpu"
    assert [(a["role"], a["name"]) for a in run["artifacts"]] == [("output", "agglomeration")]
    assert body["blockRun"] == {"blockId": 0, "status": "done", "writeRoi": [0, 0, 0, 8, 64, 64],
                                "readRoi": [0, 0, 0, 10, 80, 80], "ioS": 0.25,
                                "computeS": 1.5, "bytesRead": 100, "worker": "w0"}
    assert body["upstream"] == []
    (syn,) = data(world, q, {"id": "101", "kind": "SYNAPSE"})["provenance"]
    assert syn["stageRun"]["stage"] == "synapses"
    assert syn["stageRun"]["inputs"]["agglomeration"]["sha256"] == \
        run["artifacts"][0]["sha256"]
    assert syn["upstream"] == [{"stageRunId": world.runs["agglomerate"], "stage": "agglomerate"}]
    (sv,) = data(world, q, {"id": "31"})["provenance"]
    assert sv["kind"] == "SUPERVOXEL" and sv["block"] == 1
    assert data(world, q, {"id": "999999"})["provenance"] == []


def test_quality_map(world):
    q = """query($layer: String!, $metric: String!, $after: String) {
        qualityMap(layer: $layer, metric: $metric, first: 1, after: $after) {
          count min max mean cells { stage block value stageRunId }
          pageInfo { hasNextPage endCursor } } }"""
    m = data(world, q, {"layer": "L4", "metric": "confidence_mean"})["qualityMap"]
    assert (m["count"], m["min"], m["max"], m["mean"]) == (2, 0.5, 0.75, 0.625)
    assert m["cells"] == [{"stage": "synapses", "block": 0, "value": 0.75,
                           "stageRunId": world.runs["synapses"]}]
    m2 = data(world, q, {"layer": "L4", "metric": "confidence_mean",
                         "after": m["pageInfo"]["endCursor"]})["qualityMap"]
    assert [c["block"] for c in m2["cells"]] == [1] and not m2["pageInfo"]["hasNextPage"]
    assert data(world, q, {"layer": "L9", "metric": "x"})["qualityMap"]["count"] == 0
    # asOf: the runs behind version 1 (synapses) and upstream of them (agglomerate)
    v1 = data(world, """{ qualityMap(layer: "L3", metric: "supervoxels_per_body", asOf: 1) {
        count } }""")["qualityMap"]
    assert v1["count"] == 1


def test_regions_and_flag_mutation_roles(world):
    q = "{ regions { name box flags reason } }"
    assert data(world, q)["regions"] == [
        {"name": "calyx", "box": [0, 0, 0, 8, 64, 64], "flags": [], "reason": None},
        {"name": "lobe", "box": [0, 64, 0, 8, 128, 64], "flags": ["dim"],
         "reason": "low contrast"}]
    m = """mutation($n: String!) { flagRegion(name: $n, flags: ["suspect"],
           reason: "synapse density low") { name flags reason } }"""
    denied = error(world, m, {"n": "calyx"}, token="read")
    assert denied["extensions"]["code"] == "FORBIDDEN"
    assert "write role" in denied["message"]
    assert data(world, m, {"n": "calyx"}, token="write")["flagRegion"] == {
        "name": "calyx", "flags": ["suspect"], "reason": "synapse density low"}
    assert data(world, m, {"n": "nowhere"}, token="admin")["flagRegion"] is None
    assert data(world, q)["regions"][0]["flags"] == ["suspect"]


def test_annotate_neuron_needs_write(world):
    m = """mutation($id: Id64!, $s: String) { annotateNeuron(bodyId: $id, status: $s) {
        __typename ... on Neuron { bodyId status type } ... on NotFound { message } } }"""
    assert error(world, m, {"id": str(C), "s": "Roughly traced"},
                 token="read")["extensions"]["code"] == "FORBIDDEN"
    try:
        out = data(world, m, {"id": str(C), "s": "Roughly traced"}, token="write")
        assert out["annotateNeuron"] == {"__typename": "Neuron", "bodyId": str(C),
                                         "status": "Roughly traced", "type": "PN"}
        assert data(world, f"{{ neuron(bodyId: {C}) {{ status }} }}")["neuron"]["status"] == \
            "Roughly traced"
    finally:
        data(world, m, {"id": str(C), "s": "Orphan"}, token="admin")
    missing = data(world, m, {"id": "77", "s": "x"}, token="write")["annotateNeuron"]
    assert missing["__typename"] == "NotFound"


# --- auth --------------------------------------------------------------------------------
def test_tokens_required_and_revocation(world):
    q = {"query": "{ regions { name } }"}
    none = http(world.app, "POST", "/graphql", None, json=q)
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    assert none.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert http(world.app, "POST", "/graphql", world.tokens["revoked"], json=q).status_code == 401
    assert http(world.app, "POST", "/graphql", "cxg_nope_nope", json=q).status_code == 401
    assert http(world.app, "POST", "/cypher", None, json={"query": "RETURN 1"}).status_code == 401
    # a token revoked while the server runs is refused from the next request on
    tok, rec = TokenStore.for_workspace(world.ws.root).create("temp", "read")
    assert http(world.app, "POST", "/graphql", tok, json=q).status_code == 200
    TokenStore.for_workspace(world.ws.root).revoke(rec.token_id)
    assert http(world.app, "POST", "/graphql", tok, json=q).status_code == 401
    # the token file stores hashes only, mode 0600
    path = world.ws.root / "api_tokens.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert world.tokens["read"] not in path.read_text()


def test_anonymous_read_when_configured(world):
    app = create_app(world.ws, store=world.store,
                     params=dataclasses.replace(PARAMS, anonymous_role="read"))
    try:
        r = http(app, "POST", "/graphql", None, json={"query": "{ regions { name } }"})
        assert r.status_code == 200 and "errors" not in r.json()
        m = http(app, "POST", "/graphql", None, json={
            "query": 'mutation { flagRegion(name: "lobe", flags: []) { name } }'})
        assert m.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        app.close()


def test_graphiql_page_and_get_queries(world):
    page = http(world.app, "GET", "/graphql", None, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    r = http(world.app, "GET", "/graphql", world.tokens["read"],
             params={"query": "{ regions { name } }"})
    assert r.json()["data"]["regions"][0]["name"] == "calyx"
    m = http(world.app, "GET", "/graphql", world.tokens["write"],
             params={"query": 'mutation { flagRegion(name: "lobe", flags: []) { name } }'})
    assert m.status_code == 400 and "POST" in m.text


# --- Cypher over HTTP ----------------------------------------------------------------------
def test_cypher_http_read_only(world):
    tok = world.tokens["read"]
    r = http(world.app, "POST", "/cypher", tok, json={
        "query": "MATCH (n:Segment) WHERE n.bodyId IN $ids RETURN n.bodyId AS id, n.type AS t "
                 "ORDER BY id", "params": {"ids": [A, C]}})
    assert r.status_code == 200
    assert r.json() == {"columns": ["id", "t"], "data": [[A, "KC"], [C, "PN"]],
                        "truncated": False}
    # int64 ids survive exactly in the JSON text
    assert str(A) in r.text
    for write in ("CREATE (:Evil)", "MATCH (n:Segment) SET n.status = 'x'",
                  "MATCH (n:Segment) DETACH DELETE n"):
        w = http(world.app, "POST", "/cypher", world.tokens["admin"], json={"query": write})
        assert w.status_code == 403, w.text
        assert w.json()["code"] == "READ_ONLY" and "read-only" in w.json()["error"]
    assert http(world.app, "POST", "/cypher", tok,
                json={"query": "MATCH (e:Evil) RETURN count(e)"}).json()["data"] == [[0]]
    bad = http(world.app, "POST", "/cypher", tok, json={"query": "MATC (n) RETURN n"})
    assert bad.status_code == 400 and bad.json()["code"] == "CYPHER_ERROR"


# --- limits --------------------------------------------------------------------------------
def _limit(err: dict) -> str:
    assert err["extensions"]["code"] == "LIMIT_EXCEEDED", err
    assert "Hint:" in err["message"] and err["extensions"]["hint"]
    return err["extensions"]["limit"]


def test_limits_each_say_which_and_how(world):
    assert _limit(error(world, "{ neurons(first: 51) { items { bodyId } } }")) == "first"
    ids = json.dumps([str(i) for i in range(6)])
    assert _limit(error(world, f"{{ connections(pre: {ids}, post: []) {{ items {{ pre }} }} }}"
                        )) == "ids"
    deep = f"""{{ neuron(bodyId: {A}) {{ partners {{ neuron {{ partners {{ neuron {{
        partners {{ neuron {{ bodyId }} }} }} }} }} }} }} }}"""
    err = error(world, deep)
    assert _limit(err) == "depth" and err["extensions"]["max"] == 6
    cost = """{ neurons(first: 50) { items { partners(first: 50) { weight } } } }"""
    err = error(world, cost)
    assert _limit(err) == "cost" and err["extensions"]["got"] == 2550
    aliases = "{ " + " ".join(f"a{i}: regions {{ name }}" for i in range(5)) + " }"
    assert _limit(error(world, aliases)) == "aliases"
    tokens = "{ " + " ".join("regions { name }" for _ in range(120)) + " }"
    assert _limit(error(world, tokens)) == "tokens"
    hops = f"{{ shortestPath(from: {A}, to: {B}, maxHops: 5) {{ length }} }}"
    assert _limit(error(world, hops)) == "hops"


# --- batching -------------------------------------------------------------------------------
def test_no_n_plus_one(world):
    q = """query($n: Int!) { neurons(first: $n) { items { bodyId
        partners(direction: DOWNSTREAM) { neuron { bodyId } weight }
        synapses(first: 2) { items { synapseId } } } } }"""
    counts = {}
    for n in (1, 3):
        before = CountingStore.reads
        items = data(world, q, {"n": n})["neurons"]["items"]
        counts[n] = CountingStore.reads - before
        assert len(items) == n
    # one page query + one partners batch + one synapses batch, whatever N is
    assert counts == {1: 3, 3: 3}
    q2 = f"""{{ connections(pre: [{A}, {B}], post: [{B}, {C}]) {{ items {{
        preNeuron {{ type }} postNeuron {{ type }} }} }} }}"""
    before = CountingStore.reads
    data(world, q2)
    assert CountingStore.reads - before == 2  # connections + one neuron batch for both ends


# --- schema snapshot ---------------------------------------------------------------------
def test_sdl_snapshot_matches_code():
    assert SDL_FILE.exists(), "run `cxgraph api export-schema` to write the SDL snapshot"
    assert SDL_FILE.read_text() == sdl(), (
        "schema/graphql/schema.graphql differs from the code: review the change and refresh "
        "it with `cxgraph api export-schema`")


def test_token_cli_create_list_revoke(tmp_path):
    from typer.testing import CliRunner

    from cxgraph.cli import app

    ws = Workspace.create(tmp_path / "ws")
    runner = CliRunner()
    made = runner.invoke(app, ["token", "create", "--workspace", str(ws.root), "--role",
                               "write", "--name", "alice"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    principal = TokenStore.for_workspace(ws.root).authenticate(token)
    assert principal is not None and principal.role.value == "write"
    listed = runner.invoke(app, ["token", "list", "--workspace", str(ws.root), "--json"])
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "alice" and row["revoked"] is None and "hash" not in row
    assert runner.invoke(app, ["token", "revoke", row["id"], "--workspace",
                               str(ws.root)]).exit_code == 0
    assert TokenStore.for_workspace(ws.root).authenticate(token) is None
    bad = runner.invoke(app, ["token", "create", "--workspace", str(ws.root), "--role", "god"])
    assert bad.exit_code != 0
    check = runner.invoke(app, ["api", "export-schema", "--check"])
    assert check.exit_code == 0, check.output
