"""cxgraph.Client, versioned annotations, versions/versionAt and the offline GraphiQL, on
the real Neo4j.

The graph has three versions: 1 = the three-neuron graph of tests/test_api.py (A, B, C);
2 = C split into D (supervoxel 31) and E (32), as in tests/test_api_versions.py; 3 = an
annotation of A (type KC -> KCg, instance KCg-1). The client's frames are compared with
the answers of GraphQL queries written here (sent through the ASGI app like every API
test), for the current graph and version 1; the client talks to a real uvicorn server
over HTTP and, for the workspace form, to the app in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
import time

import httpx
import pandas as pd
import polars as pl
import pytest
import uvicorn
from browser_helpers import chromium, needs_chromium
from test_api import SV_BODY, SYNAPSES, A, B, C, make_v1, record_stage_runs, synapse_table

from cxgraph import Client, ClientError
from cxgraph.api import create_app
from cxgraph.api.auth import TokenStore
from cxgraph.graph import GraphStore
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.snapshot import make_snapshot
from cxgraph.workspace import Workspace

D, E = 9007199254740999, 9007199254741001
ALL = [A, B, C, D, E]


def make_v2(runs: dict[str, str]):
    split = {104: D, 105: D, 106: E, 107: E}
    rows = [(s, pre if pre != C else split[s], post if post != C else split[s], *rest)
            for s, pre, post, *rest in SYNAPSES]
    agg = runs["agglomerate"]
    sv = {**SV_BODY, 31: D, 32: E}
    return make_snapshot(
        "pipeline", "split C", synapses=synapse_table(rows, runs["synapses"]),
        bodies=pl.DataFrame({"body_id": [A, B, D, E], "size": [5_000_000_000, 2000, 1500, 1500],
                             "status": ["Traced", "Traced", "Orphan", "Orphan"],
                             "type": ["KC", "MBON", "PN", "PN"], "stage_run": [agg] * 4,
                             "block": [0, 0, 1, 1]}),
        supervoxels=pl.DataFrame({"sv_id": list(sv), "body_id": list(sv.values()),
                                  "size": [10, 20, 30, 40, 50], "block": [0, 0, 0, 1, 1],
                                  "stage_run": [agg] * 5}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """The app on a real uvicorn server on 127.0.0.1 (a thread); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def gql(app, token: str, query: str, variables: dict | None = None) -> dict:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://cxgraph.test") as c:
            return await c.post("/graphql", json={"query": query, "variables": variables or {}},
                                headers={"Authorization": f"Bearer {token}"})
    body = asyncio.run(go()).json()
    assert "errors" not in body, body
    return body["data"]


ANNOTATE = """mutation($id: Id64!, $t: String, $i: String, $s: String) {
  annotateNeuron(bodyId: $id, type: $t, instance: $i, status: $s) {
    ... on Neuron { bodyId type instance status } } }"""


@pytest.fixture(scope="module")
def world(neo4j_connection, tmp_path_factory):
    store = GraphStore(neo4j_connection)
    store.clear()
    store.apply_schema()
    ws = Workspace.create(tmp_path_factory.mktemp("client_ws"))
    runs = record_stage_runs(ws)
    assert load_snapshot(store, make_v1(runs)).version == 1
    assert load_snapshot(store, make_v2(runs)).version == 2
    time.sleep(0.05)
    between = dt.datetime.now(dt.UTC)  # after version 2, before version 3
    time.sleep(0.05)
    tokens = TokenStore.for_workspace(ws.root)
    read, _ = tokens.create("analyst", "read")
    write, _ = tokens.create("curator", "write")
    app = create_app(ws, store=store)
    out = gql(app, write, ANNOTATE, {"id": str(A), "t": "KCg", "i": "KCg-1"})
    assert out["annotateNeuron"] == {"bodyId": str(A), "type": "KCg", "instance": "KCg-1",
                                     "status": "Traced"}
    with serving(app) as url:
        client = Client(url, token=read)
        yield {"ws": ws, "store": store, "app": app, "read": read, "write": write,
               "url": url, "client": client, "between": between, "runs": runs}
    app.close()
    store.close()


# --- versioned annotations -------------------------------------------------------------
def test_annotations_are_versioned(world):
    """Issue 15: asOf 1 showed types set later. Now an annotation is version 3, and
    earlier versions answer with the earlier values, in every field that shows them."""
    app, read = world["app"], world["read"]
    q = """query($v: Int, $a: Id64!, $b: Id64!) { neuron(bodyId: $a, asOf: $v) {
        type instance status }
      neurons(filter: {type: "KC"}, asOf: $v) { items { bodyId } }
      partners(bodyId: $b, direction: UPSTREAM, asOf: $v) { neuron { bodyId type } } }"""
    at = {v: gql(app, read, q, {"v": v, "a": str(A), "b": str(B)}) for v in (1, 2, 3, None)}
    for v in (1, 2):
        assert at[v]["neuron"] == {"type": "KC", "instance": None, "status": "Traced"}
        assert at[v]["neurons"]["items"] == [{"bodyId": str(A)}]
        assert at[v]["partners"] == [{"neuron": {"bodyId": str(A), "type": "KC"}}]
    for v in (3, None):
        assert at[v]["neuron"] == {"type": "KCg", "instance": "KCg-1", "status": "Traced"}
        assert at[v]["neurons"]["items"] == []
        assert at[v]["partners"] == [{"neuron": {"bodyId": str(A), "type": "KCg"}}]
    found = gql(app, read, '{ neurons(filter: {instance: "KCg-1"}, asOf: 3) { items { bodyId } } }')
    assert found["neurons"]["items"] == [{"bodyId": str(A)}]
    # the operation is in the body's lineage; setting the same values makes no version
    lin = gql(app, read, "query($a: Id64!) { lineage(bodyId: $a) { operations { kind version "
                         "user } } }", {"a": str(A)})
    assert {"kind": "annotate", "version": 3, "user": "curator"} in lin["lineage"]["operations"]
    gql(app, world["write"], ANNOTATE, {"id": str(A), "t": "KCg"})
    assert [v["version"] for v in gql(app, read, "{ versions { version } }")["versions"]] == [
        1, 2, 3]
    # neuPrint-style Cypher on the node sees the newest values
    assert world["store"].read("MATCH (n:Segment {bodyId: $a}) RETURN n.type, n.instance",
                               {"a": A}).rows == [["KCg", "KCg-1"]]


def test_versions_in_graphql_and_the_client(world):
    app, read = world["app"], world["read"]
    vs = gql(app, read, """{ versions { version kind complete createdAt stageRuns
        operations { operationId kind user params } } }""")["versions"]
    assert [(v["version"], v["kind"], v["complete"]) for v in vs] == [
        (1, "pipeline", True), (2, "pipeline", True), (3, "annotate", True)]
    assert world["runs"]["agglomerate"] in vs[0]["stageRuns"]
    assert {"v1:agglomerate", "v2:rerun"} <= {o["operationId"] for v in vs[:2]
                                               for o in v["operations"]}
    assert vs[2]["operations"] == [{"operationId": "v3:annotate", "kind": "annotate",
                                    "user": "curator", "params": {
                                        "bodyId": str(A), "type": "KCg",
                                        "instance": "KCg-1"}}]
    df = world["client"].versions()
    assert list(df.columns) == ["version", "createdAt", "kind", "source", "note", "complete",
                                "fingerprint", "stageRuns", "operations"]
    assert df["version"].tolist() == [1, 2, 3]
    assert df["createdAt"].is_monotonic_increasing and str(df["createdAt"].dt.tz) == "UTC"
    assert df["stageRuns"].tolist() == [v["stageRuns"] for v in vs]
    assert [o["kind"] for o in df["operations"].iloc[2]] == ["annotate"]


# --- the client equals GraphQL ----------------------------------------------------------
@pytest.mark.parametrize("as_of", [None, 1])
def test_client_equals_graphql(world, as_of):
    app, read, client = world["app"], world["read"], world["client"]
    v = {"v": as_of}

    neurons = gql(app, read, """query($v: Int) { neurons(asOf: $v) { items { bodyId type
        instance status size pre post upstream downstream validFrom validTo stageRun } } }""",
                  v)["neurons"]["items"]
    df = client.fetch_neurons(as_of=as_of)
    assert df["bodyId"].dtype == "int64"
    got = df[list(neurons[0])].astype(object).where(df.notna(), None).to_dict("records")
    assert got == [{**n, "bodyId": int(n["bodyId"])} for n in neurons]
    assert df["bodyId"].tolist() == ([A, B, C] if as_of == 1 else [A, B, D, E])
    assert client.fetch_neurons(ALL, as_of=as_of)["bodyId"].tolist() == df["bodyId"].tolist()

    conns = gql(app, read, """query($v: Int, $ids: [Id64!]!) { connections(pre: $ids,
        post: $ids, asOf: $v) { items { pre post weight weightHr } } }""",
                {**v, "ids": [str(b) for b in ALL]})["connections"]["items"]
    adj = client.fetch_adjacencies(ALL, ALL, as_of=as_of)
    assert list(adj.columns) == ["bodyId_pre", "bodyId_post", "weight", "weightHR"]
    assert adj.values.tolist() == [[int(c["pre"]), int(c["post"]), c["weight"], c["weightHr"]]
                                   for c in conns]
    assert [B, D if as_of is None else C, 2] in adj[["bodyId_pre", "bodyId_post", "weight"]
                                                   ].values.tolist()
    assert client.fetch_adjacencies(ALL, None, as_of=as_of).equals(adj)  # any target

    syn = gql(app, read, """query($v: Int, $b: Id64!) { synapses(bodyId: $b, asOf: $v) {
        items { synapseId type confidence location { x y z } partnerBodyIds } } }""",
              {**v, "b": str(B)})["synapses"]["items"]
    sdf = client.fetch_synapses([B], as_of=as_of)
    assert [(r.synapseId, r.type, r.confidence, r.x, r.y, r.z, r.partnerBodyIds)
            for r in sdf.itertuples()] == [
        (int(s["synapseId"]), s["type"], s["confidence"], s["location"]["x"],
         s["location"]["y"], s["location"]["z"], [int(p) for p in s["partnerBodyIds"]])
        for s in syn]
    assert (sdf["bodyId"] == B).all() and len(sdf) == 5

    sc = gql(app, read, """query($v: Int, $ids: [Id64!]!) { synapseConnections(pre: $ids,
        asOf: $v) { items { synapseId preBodyId postBodyId preLocation { x y z }
        postLocation { x y z } preConfidence postConfidence } } }""",
             {**v, "ids": [str(A), str(B)]})["synapseConnections"]["items"]
    scdf = client.fetch_synapse_connections([A, B], as_of=as_of)
    assert scdf[["synapseId", "bodyId_pre", "bodyId_post", "y_pre", "y_post",
                 "confidence_pre"]].astype(object).values.tolist() == [
        [int(s["synapseId"]), int(s["preBodyId"]), int(s["postBodyId"]),
         s["preLocation"]["y"], s["postLocation"]["y"], s["preConfidence"]] for s in sc]
    assert scdf["synapseId"].tolist() == [101, 102, 103, 104, 105, 106]
    post_of_104 = scdf.set_index("synapseId").loc[104, "bodyId_post"]
    assert post_of_104 == (C if as_of == 1 else D)
    assert client.fetch_synapse_connections(A, B, as_of=as_of)["synapseId"].tolist() == [
        101, 102, 103]

    lin = gql(app, read, """query($v: Int, $c: Id64!) { lineage(bodyId: $c, asOf: $v) {
        supersededBy operations { operationId kind version } } }""",
              {**v, "c": str(C)})["lineage"]
    ldf = client.lineage(C, as_of=as_of)
    assert ldf[["operationId", "kind", "version"]].to_dict("records") == lin["operations"]
    assert ldf.attrs["supersededBy"] == [int(b) for b in lin["supersededBy"]] == (
        [] if as_of == 1 else [D, E])

    prov = gql(app, read, """query($v: Int, $a: Id64!) { provenance(objectId: $a, kind: BODY,
        asOf: $v) { stageRunId upstream { stageRunId } } }""", {**v, "a": str(A)})["provenance"]
    pdf = client.provenance(A, "body", as_of=as_of)
    assert pdf["stageRunId"].tolist() == [prov[0]["stageRunId"]] + [
        u["stageRunId"] for u in prov[0]["upstream"]]
    assert pdf["relation"].tolist()[0] == "produced"
    assert pdf["stage"].iloc[0] == "agglomerate"

    q = gql(app, read, """query($v: Int) { qualityMap(layer: "L4", metric: "confidence_mean",
        asOf: $v) { count mean cells { block value } } }""", v)["qualityMap"]
    qdf = client.quality("L4", "confidence_mean", as_of=as_of)
    assert qdf[["block", "value"]].to_dict("records") == q["cells"]
    assert qdf.attrs["count"] == q["count"] == 2 and qdf.attrs["mean"] == q["mean"]


def test_as_of_by_timestamp(world):
    client = world["client"]
    between = world["between"]
    assert client.resolve_version(between) == 2
    assert client.resolve_version(between.isoformat()) == 2
    assert client.resolve_version(pd.Timestamp(between)) == 2
    naive_utc = between.replace(tzinfo=None).isoformat()  # no offset: UTC, as CAVE
    assert client.resolve_version(naive_utc) == 2
    assert client.resolve_version(dt.datetime.now(dt.UTC)) == 3
    a = client.fetch_neurons(A, as_of=between)
    assert a[["type", "instance"]].values.tolist() == [["KC", None]]
    assert client.fetch_neurons(A, as_of=dt.datetime.now(dt.UTC))["type"].tolist() == ["KCg"]
    with pytest.raises(ClientError, match="no graph version was complete"):
        client.fetch_neurons(A, as_of="2001-01-01T00:00:00Z")
    with pytest.raises(ClientError, match="expected an ISO 8601"):
        client.resolve_version("last tuesday")


def test_workspace_client_and_errors(world, monkeypatch):
    """Client(workspace) runs the workspace's app in this process on its (running) Neo4j
    and answers as the server does; bad input says what is wrong."""
    conn = world["store"].conn
    for key, value in (("NEO4J_URI", conn.uri), ("NEO4J_USER", conn.user),
                       ("NEO4J_PASSWORD", conn.password)):
        monkeypatch.setenv(key, value)
    with Client(world["ws"].root, token=world["read"]) as local:
        assert local.fetch_neurons(as_of=1).equals(world["client"].fetch_neurons(as_of=1))
        assert local.fetch_adjacencies(ALL).equals(world["client"].fetch_adjacencies(ALL))
    with pytest.raises(ClientError, match="unknown or revoked"):
        Client(world["url"], token="not-a-token").fetch_neurons(A)
    with pytest.raises(ValueError, match="unknown criteria"):
        world["client"].fetch_neurons({"typo": 1})
    with pytest.raises(LookupError, match="no body 77"):
        world["client"].lineage(77)
    with pytest.raises(ClientError, match="cannot reach"):
        Client(f"127.0.0.1:{free_port()}", token="x").versions()


# --- GraphiQL offline --------------------------------------------------------------------
def test_graphiql_page_and_assets_are_served_locally(world):
    app = world["app"]

    async def get(path: str, **headers):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://cxgraph.test") as c:
            return await c.get(path, headers=headers)

    page = asyncio.run(get("/graphql", Accept="text/html"))
    assert page.status_code == 200 and "<title>cxgraph GraphiQL</title>" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assets = [p for p in page.text.split('"') if p.startswith("/graphiql/")]
    assert len(assets) == 4
    sizes = {}
    for path in assets:
        r = asyncio.run(get(path))  # httpx sends Accept-Encoding: gzip and decodes
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip", path
        sizes[path] = int(r.headers["content-length"])
        assert len(r.content) > sizes[path]
    assert sum(sizes.values()) < 1_200_000, sizes  # compressed, as vendored
    plain = asyncio.run(get("/graphiql/react.production.min.js", **{"Accept-Encoding": ""}))
    assert "content-encoding" not in plain.headers and b"React" in plain.content
    assert asyncio.run(get("/graphiql/../app.py")).status_code == 404
    assert asyncio.run(get("/graphiql/index.html")).status_code == 404


@needs_chromium
def test_graphiql_runs_the_starter_query_in_chromium(world, tmp_path):
    """The page in a real browser, with no network but this server: it renders, takes the
    token from the URL fragment and runs its starter query."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium(tmp_path)
    try:
        driver.get(f"{world['url']}/graphql#token={world['read']}")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".graphiql-execute-button"))
        driver.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
        wait.until(lambda d: str(A) in d.find_element(
            By.CSS_SELECTOR, ".graphiql-response").text)
        text = driver.find_element(By.CSS_SELECTOR, ".graphiql-response").text
        assert "annotate" in text and "UNAUTHENTICATED" not in text
        urls = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert urls and all(u.startswith(world["url"]) for u in urls), urls
    finally:
        driver.quit()


def test_reloading_unchanged_tables_after_an_annotation_keeps_it(world):
    """The tables of version 2 loaded again after the annotation (version 3): a re-load of
    version 2, no new version; version 3 stays current and the annotation stays on the
    body (the tables' older type does not overwrite it)."""
    store = world["store"]
    report = load_snapshot(store, make_v2(world["runs"]))
    assert (report.version, report.reloaded) == (2, True)
    assert [v["version"] for v in gql(world["app"], world["read"], "{ versions { version } }")[
        "versions"]] == [1, 2, 3]
    assert store.read("MATCH (m:Meta) RETURN m.currentVersion").rows == [[3]]
    assert store.read("MATCH (n:Segment {bodyId: $a}) RETURN n.type, n.instance",
                      {"a": A}).rows == [["KCg", "KCg-1"]]
