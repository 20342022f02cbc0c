"""The real neuprint-python client against a real cxgraph server (HTTPS, the generated
certificate) on the test Neo4j. Every answer is checked against the synapse table below.

Bodies (A, B, C above 2**53, so a float-based JSON path would corrupt them)::

    A (KC, KC_a_R)  -> B (MBON, MBON01_R)  synapses conf 0.9, 0.8, 0.4
    B               -> C (PN, PN_x_L)      0.95, 0.7
    A               -> C                   0.99
    C               -> A                   0.3
    D (untyped)     -> B                   0.9       D: 1 pre, 0 post -> :Segment only

Thresholds: weight counts confidence >= 0.5 (postHighAccuracyThreshold), weightHP >= 0.85.
This is version 2; version 1 had a fourth A -> B synapse and a B -> A one (so its A -> B
and B -> A edges and those synapses are retired, and every answer below must not see them).
"""

from __future__ import annotations

import json
import stat
import time
from collections import Counter

import neuprint
import numpy as np
import polars as pl
import pytest
import requests
from neuprint import NeuronCriteria as NC
from neuprint_helpers import door, free_port

from cxgraph.api.auth import TokenStore
from cxgraph.api.neuprint import rewrite, timeboxed
from cxgraph.graph import GraphStore
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.meta import INTERNAL, VOLUME_ROI
from cxgraph.graph.params import GraphParams
from cxgraph.graph.snapshot import make_snapshot
from cxgraph.workspace import Workspace

A, B, C, D = 9007199254740993, 9007199254740995, 9007199254740997, 5000
HI, HP = 0.5, 0.85
# (synapse_id, pre, post, confidence, pre location (z, y, x))
SYNAPSES = [
    (1, A, B, 0.9, (1, 10, 10)), (2, A, B, 0.8, (2, 10, 20)), (3, A, B, 0.4, (3, 10, 30)),
    (4, B, C, 0.95, (4, 40, 10)), (5, B, C, 0.7, (5, 40, 20)),
    (6, A, C, 0.99, (6, 60, 60)), (7, C, A, 0.3, (7, 70, 70)), (8, D, B, 0.9, (8, 80, 80)),
]
BODIES = {A: ("KC", "KC_a_R", "Traced"), B: ("MBON", "MBON01_R", "Traced"),
          C: ("PN", "PN_x_L", "Roughly traced")}


def weights(minimum: float) -> Counter:
    return Counter((pre, post) for _, pre, post, conf, _ in SYNAPSES if conf >= minimum)


def snapshot(synapses=SYNAPSES):
    syn = pl.DataFrame({
        "synapse_id": [s[0] for s in synapses], "pre_body": [s[1] for s in synapses],
        "post_body": [s[2] for s in synapses], "confidence": [s[3] for s in synapses],
        "pre_z": [float(s[4][0]) for s in synapses], "pre_y": [float(s[4][1]) for s in synapses],
        "pre_x": [float(s[4][2]) for s in synapses],
        "post_z": [float(s[4][0]) for s in synapses],
        "post_y": [float(s[4][1]) + 1 for s in synapses],
        "post_x": [float(s[4][2]) for s in synapses],
        "block": [0] * len(synapses), "stage_run": ["synapses-run"] * len(synapses)})
    bodies = pl.DataFrame({"body_id": list(BODIES), "type": [v[0] for v in BODIES.values()],
                           "instance": [v[1] for v in BODIES.values()],
                           "status": [v[2] for v in BODIES.values()],
                           "size": [5_000_000_000, 2000, 3000], "stage_run": ["agg"] * 3})
    return make_snapshot("pipeline", "neuprint door test", synapses=syn, bodies=bodies,
                         voxel_size=(40.0, 8.0, 8.0))


SEG_SHAPE = (16, 64, 128)


def segmentation() -> np.ndarray:
    """Body A as the pipeline segmented it: an axon along x (x 10..119) with a branch
    along y (y 20..43) at x 60..69; body B a blob."""
    v = np.zeros(SEG_SHAPE, np.uint64)
    v[6:10, 28:36, 10:120] = A
    v[2:14, 20:44, 60:70] = A
    v[0:4, 0:8, 0:8] = B
    return v


@pytest.fixture(scope="module")
def server(neo4j_connection, tmp_path_factory):
    """A cxgraph server (HTTP + HTTPS listeners of `cxgraph serve`) on the loaded graph."""
    store = GraphStore(neo4j_connection, batch_size=500, query_timeout_s=60.0)
    store.clear()
    store.apply_schema()
    params = GraphParams(post_high_accuracy_threshold=HI, post_hp_threshold=HP)
    # version 1 has one more A -> B synapse; the door must answer version 2 (SYNAPSES)
    load_snapshot(store, snapshot([*SYNAPSES, (9, A, B, 0.6, (9, 90, 90)),
                                   (10, B, A, 0.9, (10, 50, 50))]), params)
    assert load_snapshot(store, snapshot(), params).version == 2
    ws = Workspace.create(tmp_path_factory.mktemp("door_ws"))
    seg = ws.create_array("segmentation", SEG_SHAPE, np.uint64, chunks=(8, 64, 64),
                          voxel_size=(40.0, 8.0, 8.0))
    seg[:] = segmentation()
    token, _ = TokenStore.for_workspace(ws.root).create("analyst", "read")
    with door(store, ws) as d:
        client = neuprint.Client(d["url"], token=token, verify=d["cert"], progress=False)
        yield {**d, "token": token, "client": client, "store": store, "ws": ws}
    store.close()


# --- the door itself ---------------------------------------------------------------------
def test_certificate_and_token_required(server):
    assert stat.S_IMODE(server["key"].stat().st_mode) == 0o600
    r = requests.get(server["url"] + "/api/dbmeta/datasets", verify=server["cert"])
    assert r.status_code == 401 and "token" in r.json()["error"]
    r = requests.get(server["url"] + "/api/dbmeta/datasets", verify=server["cert"],
                     headers={"Authorization": "Bearer cxg_00000000_nope"})
    assert r.status_code == 401
    neuprint.Client.DATASETS_CACHE.clear()  # the client caches the dataset list per server
    with pytest.raises(requests.HTTPError, match="401"):
        neuprint.Client(server["url"], token="cxg_00000000_nope", verify=server["cert"])
    with pytest.raises(requests.exceptions.SSLError):  # the certificate is not a public one
        requests.get(server["url"] + "/api/version", timeout=5)


def test_meta_endpoints(server):
    c = server["client"]
    assert c.dataset == "cxgraph"
    ds = c.fetch_datasets()["cxgraph"]
    assert ds["ROIs"] == [VOLUME_ROI] and ds["uuid"]
    assert c.fetch_version() == "1.7.0" and not c.arrow_endpoint()
    assert "neo4j" in c.fetch_db_version().lower()
    assert c.fetch_server_info() is False  # anonymous access is off
    assert c.fetch_profile()["AuthLevel"] == "readonly"


def test_meta_node(server):
    meta = neuprint.fetch_meta(client=server["client"])
    assert meta["roiInfo"] == {VOLUME_ROI: {"pre": 8, "post": 8}}
    assert meta["primaryRois"] == [VOLUME_ROI]
    assert meta["postHighAccuracyThreshold"] == HI and meta["postHPThreshold"] == HP
    assert meta["totalPreCount"] == 8 and meta["statusDefinitions"]["Traced"]
    assert not INTERNAL & set(meta)
    props = json.loads(meta["neuronProperties"])
    assert {"bodyId", "type", "instance", "status", "statusLabel", "pre", "post", "upstream",
            "downstream", "synweight", "roiInfo", "size"} <= set(props)
    assert props["bodyId"] == "INTEGER" and props["type"] == "STRING"
    assert not INTERNAL & set(props) and VOLUME_ROI not in props
    assert neuprint.fetch_roi_hierarchy(client=server["client"]) == {
        "cxgraph": {f"{VOLUME_ROI}*": {}}}


# --- neurons -----------------------------------------------------------------------------
def test_fetch_neurons_by_id_type_instance_regex(server):
    c = server["client"]
    df, roi = neuprint.fetch_neurons(NC(bodyId=[A, B]), client=c)
    assert df["bodyId"].tolist() == [A, B]  # int64 exact
    a = df.set_index("bodyId").loc[A]
    assert (a["type"], a["instance"], a["status"], a["statusLabel"]) == ("KC", "KC_a_R",
                                                                         "Traced", "Traced")
    n_pre = sum(1 for s in SYNAPSES if s[1] == A)
    n_post = sum(1 for s in SYNAPSES if s[2] == A)
    assert (a["pre"], a["post"], a["downstream"], a["upstream"]) == (n_pre, n_post, n_pre,
                                                                      n_post)
    assert a["outputRois"] == [VOLUME_ROI] and a["size"] == 5_000_000_000
    assert not INTERNAL & set(df.columns)
    r = roi.set_index(["bodyId", "roi"]).loc[(A, VOLUME_ROI)]
    assert (r["pre"], r["post"]) == (n_pre, n_post)
    assert neuprint.fetch_neurons(NC(type="MBON"), client=c)[0]["bodyId"].tolist() == [B]
    assert neuprint.fetch_neurons(NC(instance="PN_x_L"), client=c)[0]["bodyId"].tolist() == [C]
    df = neuprint.fetch_neurons(NC(type="(KC|PN)", regex=True), client=c)[0]
    assert sorted(df["bodyId"]) == sorted([A, C])
    df = neuprint.fetch_neurons(NC(status="Roughly traced"), client=c)[0]
    assert df["bodyId"].tolist() == [C]


def test_neuron_rule(server):
    """D (1 pre, 0 post, untyped) is a :Segment, not a :Neuron (pre >= 2 or post >= 10 or
    typed); typed bodies are neurons whatever their counts."""
    c = server["client"]
    assert neuprint.fetch_neurons(NC(bodyId=D, label="Neuron"), client=c)[0].empty
    everyone = neuprint.fetch_neurons(NC(label="Neuron"), client=c)[0]
    assert sorted(everyone["bodyId"]) == sorted([A, B, C])
    seg = neuprint.fetch_neurons(NC(bodyId=D), client=c)[0]  # bodyIds: label Segment
    assert seg["bodyId"].tolist() == [D] and seg["pre"].tolist() == [1]


# --- connectivity -------------------------------------------------------------------------
def test_fetch_adjacencies_weights_equal_the_table(server):
    c = server["client"]
    neurons, conn = neuprint.fetch_adjacencies([A, B, C], [A, B, C], client=c)
    hi, hr, hp = weights(HI), weights(0.0), weights(HP)
    got = {(r.bodyId_pre, r.bodyId_post): (r.weight, r.weightHP) for r in conn.itertuples()
           if r.roi == VOLUME_ROI}
    assert got == {k: (v, hp[k]) for k, v in hi.items() if k[0] != D}
    assert sorted(neurons["bodyId"]) == sorted([A, B, C])
    # the edge properties, as stored
    df = c.fetch_custom(f"MATCH (a:Segment {{bodyId: {A}}})-[e:ConnectsTo]->"
                        f"(b:Segment {{bodyId: {B}}}) RETURN e.weight AS w, e.weightHR AS hr, "
                        f"e.weightHP AS hp, e.roiInfo AS roi")
    assert df.iloc[0][["w", "hr", "hp"]].tolist() == [hi[A, B], hr[A, B], hp[A, B]]
    assert json.loads(df["roi"][0]) == {VOLUME_ROI: {"pre": hr[A, B], "post": hi[A, B],
                                                     "weightHP": hp[A, B]}}


def test_fetch_simple_connections(server):
    df = neuprint.fetch_simple_connections(A, client=server["client"])
    hi = weights(HI)
    assert dict(zip(df["bodyId_post"], df["weight"], strict=True)) == {
        post: w for (pre, post), w in hi.items() if pre == A}
    assert set(df["type_post"]) == {"MBON", "PN"}


def test_first_query_a_neuprint_user_writes(server):
    df = server["client"].fetch_custom(
        "MATCH (a:Neuron {instance:'KC_a_R'})-[w:ConnectsTo]->(b) "
        "RETURN b.instance AS instance, w.weight AS weight ORDER BY w.weight DESC LIMIT 5")
    assert df.values.tolist() == [["MBON01_R", weights(HI)[A, B]], ["PN_x_L", weights(HI)[A, C]]]


def test_fetch_shortest_paths_walks_the_current_version(server):
    """B -> A was a direct edge in version 1 only; now the way is B -> C -> A."""
    c = server["client"]
    df = neuprint.fetch_shortest_paths(B, A, min_weight=0, intermediate_criteria=NC(),
                                       client=c)
    assert df["bodyId"].tolist() == [B, C, A]
    assert df["weight"].tolist() == [0, weights(HI)[B, C], weights(HI)[C, A]]
    paths = neuprint.fetch_paths(B, A, path_length=1, intermediate_criteria=NC(), client=c)
    assert paths.empty


# --- synapses -----------------------------------------------------------------------------
def test_fetch_synapses(server):
    df = neuprint.fetch_synapses(NC(bodyId=A), client=server["client"])
    mine = [s for s in SYNAPSES if A in (s[1], s[2]) and s[3] > HI]  # client: conf > default
    assert len(df) == len(mine)
    pre = df[df["type"] == "pre"].sort_values("z")
    want = sorted((s[4][0], s[4][1], s[4][2]) for s in mine if s[1] == A)
    assert list(zip(pre["z"], pre["y"], pre["x"], strict=True)) == want  # (x, y, z) -> zyx
    assert set(df["roi"]) == {VOLUME_ROI}
    assert not INTERNAL & set(df.columns), df.columns
    assert set(df.columns) == {"bodyId", "type", "roi", "x", "y", "z", "confidence"}


def test_fetch_synapse_connections(server):
    df = neuprint.fetch_synapse_connections(A, B, client=server["client"])
    want = [s for s in SYNAPSES if (s[1], s[2]) == (A, B) and s[3] > HI]
    assert len(df) == len(want)
    assert sorted(df["confidence_pre"]) == pytest.approx(sorted(s[3] for s in want))
    assert (df["y_post"] - df["y_pre"]).tolist() == [1] * len(want)
    assert not {f"{k}_pre" for k in INTERNAL} & set(df.columns), df.columns


# --- fetch_custom: values, rewrites, read-only ---------------------------------------------
def test_custom_values_as_neuprint_http(server):
    c = server["client"]
    out = c.fetch_custom(f"MATCH (n:Neuron {{bodyId: {A}}})-[e:ConnectsTo]->(m {{bodyId: {B}}}) "
                         f"MATCH (n)-[:Contains]->(:SynapseSet)-[:Contains]->(s:Synapse "
                         f"{{type: 'pre'}}) RETURN n, e, s.location AS loc, n.bodyId AS id "
                         f"ORDER BY s.location.z LIMIT 1", format="json")
    n, e, loc, body = out["data"][0]
    assert body == A and n["bodyId"] == A and n["type"] == "KC"
    assert not INTERNAL & set(n) and not INTERNAL & set(e)
    assert e["type"] == "ConnectsTo" and e["weight"] == weights(HI)[A, B]
    assert "startNodeId" in e and "endNodeId" in e
    assert loc["type"] == "Point" and loc["coordinates"] == [10.0, 10.0, 1.0]  # x, y, z
    assert loc["crs"]["name"] == "cartesian-3d"


def test_neo4j4_exists_is_rewritten(server):
    df = server["client"].fetch_custom(
        "MATCH (n:Segment) WHERE NOT exists(n.type) RETURN n.bodyId AS id")
    assert df["id"].tolist() == [D]
    assert rewrite("WHERE exists(n.`MB(R)`) AND n.x = 'exists(n.y)'") == \
        "WHERE (n.`MB(R)` IS NOT NULL) AND n.x = 'exists(n.y)'"
    # variable-length patterns: the predicate joins the clause's WHERE, literals untouched
    assert rewrite("MATCH p = (a)-[:ConnectsTo*1..2]->(b {n: 'WITH)'}) WHERE a.x = 1 OR "
                   "b.y = 2 RETURN p") == (
        "MATCH p = (a)-[_path0:ConnectsTo*1..2]->(b {n: 'WITH)'}) WHERE ( a.x = 1 OR b.y = 2 ) "
        "AND ALL(_x IN _path0 WHERE _x.validTo IS NULL) RETURN p")
    inner, seconds, items = timeboxed(
        'CALL apoc.cypher.runTimeboxed("MATCH (n) WHERE n.a = \\"x\\" RETURN count(n) as c",'
        ' {}, 5000) YIELD value RETURN value.c as count')
    assert (inner, seconds, items) == ('MATCH (n) WHERE n.a = "x" RETURN count(n) as c', 5.0,
                                       [("c", "count")])


def test_read_only(server):
    c = server["client"]
    with pytest.raises(requests.HTTPError, match="only reads are allowed"):
        c.fetch_custom("CREATE (n:Segment {bodyId: 1}) RETURN n")
    # the client's runTimeboxed form is unwrapped, and its query checked like any other
    with pytest.raises(requests.HTTPError, match="only reads are allowed"):
        c.fetch_custom('CALL apoc.cypher.runTimeboxed("CREATE (n:Segment {bodyId: 1}) '
                       'RETURN count(n) AS c", {}, 5000) YIELD value RETURN value.c AS count')
    assert server["store"].read("MATCH (n:Segment {bodyId: 1}) RETURN count(n)").rows == [[0]]
    with pytest.raises(requests.HTTPError, match="dataset 'hemibrain' is not on this server"):
        c.fetch_custom("RETURN 1", dataset="hemibrain")


# --- `cxgraph serve` itself ---------------------------------------------------------------
def test_cxgraph_serve_generates_a_certificate_and_serves_neuprint(server, neo4j_connection,
                                                                   tmp_path):
    """The command: a fresh workspace gets WS/tls/{cert,key}.pem and both listeners."""
    import os
    import subprocess
    import sys

    ws = Workspace.create(tmp_path / "ws")
    token, _ = TokenStore.for_workspace(ws.root).create("cli", "read")
    port, https_port = free_port(), free_port()
    env = {**os.environ, "NEO4J_URI": neo4j_connection.uri, "NEO4J_USER": neo4j_connection.user,
           "NEO4J_PASSWORD": neo4j_connection.password}
    proc = subprocess.Popen([sys.executable, "-m", "cxgraph", "serve", "-w", str(ws.root),
                             "--port", str(port), "--neuprint-port", str(https_port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        cert = ws.root / "tls" / "cert.pem"
        url = f"https://127.0.0.1:{https_port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if requests.get(url + "/api/version", verify=str(cert), timeout=2,
                                headers={"Authorization": f"Bearer {token}"}).ok:
                    break
            except (requests.ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, "cxgraph serve did not answer"
            time.sleep(0.3)
        assert stat.S_IMODE((ws.root / "tls" / "key.pem").stat().st_mode) == 0o600
        neuprint.Client.DATASETS_CACHE.clear()
        c = neuprint.Client(url, token=token, verify=str(cert), progress=False)
        df = neuprint.fetch_neurons(NC(type="KC"), client=c)[0]
        assert df["bodyId"].tolist() == [A]
        r = requests.post(f"http://127.0.0.1:{port}/cypher", json={"query": "RETURN 1 AS x"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.json()["data"] == [[1]]  # the GraphQL/Cypher listener runs beside it
    finally:
        proc.terminate()
        proc.wait(20)


# --- skeletons ------------------------------------------------------------------------------
def test_skeleton_of_a_segmented_body(server):
    c = server["client"]
    df = c.fetch_skeleton(A, format="pandas")
    assert {"rowId", "x", "y", "z", "radius", "link"} <= set(df.columns)
    assert (df["link"] == -1).sum() == 1  # one tree
    # voxel coordinates x, y, z (as synapse locations), spanning the body's voxels
    assert df["x"].min() <= 12 and df["x"].max() >= 117
    assert df["y"].min() <= 22 and df["y"].max() >= 41
    assert 2 <= df["z"].min() and df["z"].max() <= 13
    with pytest.raises(requests.HTTPError, match="not in the segmentation"):
        c.fetch_skeleton(C)


def test_skeletons_and_meshes_are_cached_per_segmentation(server):
    """Made once per body and segmentation: a new segmentation (a re-run) makes them anew
    and the old ones go."""
    c, ws = server["client"], server["ws"]
    cache = ws.root / "cache" / "shapes"
    first = c.fetch_skeleton(A, format="swc")
    (key,) = [d.name for d in cache.iterdir()]
    swc = cache / key / f"{A}.swc"
    assert swc.read_text() == first
    swc.write_text(first.replace("\n", "\n# from the cache\n", 1))  # served from here
    assert "# from the cache" in c.fetch_skeleton(A, format="swc")
    seg = ws.array("segmentation", mode="r+")
    try:
        time.sleep(0.01)
        seg[:, :, 60:70] = np.where(seg[:, :, 60:70] == A, 0, seg[:, :, 60:70])  # A: no branch
        seg[6:10, 28:36, 60:70] = A
        df = c.fetch_skeleton(A, format="pandas")
        assert df["y"].min() >= 28 and df["y"].max() <= 35  # traced from the new voxels
        assert [d.name for d in cache.iterdir()] != [key]  # a new key; the old one is gone
        assert len(list(cache.iterdir())) == 1
    finally:
        seg[:] = segmentation()


def test_navis_fetch_skeletons(server):
    """navis, unchanged, on top of neuprint-python: a TreeNeuron of the segmented body, with
    its synapses attached to the skeleton, in the dataset's voxel units."""
    navis_neuprint = pytest.importorskip("navis.interfaces.neuprint")
    nl = navis_neuprint.fetch_skeletons(A, with_synapses=True, client=server["client"])
    assert len(nl) == 1
    n = nl[0]
    assert n.id == A and n.name == "KC_a_R" and n.n_trees == 1
    assert n.n_nodes == len(server["client"].fetch_skeleton(A, format="pandas"))
    n_syn = sum(1 for s in SYNAPSES if A in (s[1], s[2]) and s[3] > HI)
    assert len(n.connectors) == n_syn
    assert [str(u) for u in n.units] == ["8.0 nanometer", "8.0 nanometer", "40.0 nanometer"]


# --- meshes ---------------------------------------------------------------------------------
def test_navis_fetch_mesh_neuron(server, monkeypatch):
    """navis, unchanged (with dvidtools, which it asks for): the body's zmesh surface from
    the segmentation, in nm on the wire and in the skeleton's voxel units after navis. Its
    plain requests sessions trust the generated certificate through REQUESTS_CA_BUNDLE."""
    navis_neuprint = pytest.importorskip("navis.interfaces.neuprint")
    pytest.importorskip("dvid")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server["cert"])
    c = server["client"]
    nl = navis_neuprint.fetch_mesh_neuron(A, lod=None, with_synapses=True, client=c)
    assert len(nl) == 1
    n = nl[0]
    assert n.id == A and n.name == "KC_a_R" and n.trimesh.is_watertight
    lo, hi = n.vertices.min(0), n.vertices.max(0)  # x, y, z voxels: A's voxels +- 1/2
    assert np.allclose(lo, [9.5, 19.5, 1.5], atol=0.01)
    assert np.allclose(hi, [119.5, 43.5, 13.5], atol=0.01)
    n_voxels = int((segmentation() == A).sum())
    assert n.volume == pytest.approx(n_voxels, rel=0.15)  # voxel units: one per voxel
    assert len(n.connectors) == sum(1 for s in SYNAPSES if A in (s[1], s[2]) and s[3] > HI)
    with pytest.raises(requests.HTTPError, match="404"):  # not segmented: no mesh
        navis_neuprint.fetch_mesh_neuron(C, lod=None, missing_mesh="raise", client=c)


def test_mesh_key_stands_for_the_token(server):
    """dvidtools sends no token: the segmentation source's key stands for it."""
    c = server["client"]
    layers = c.session.get(f"{server['url']}/api/npexplorer/nglayers/cxgraph.json",
                           verify=server["cert"]).json()
    source = layers["layers"][0]["source"]
    assert source.startswith(f"dvid://{server['url']}/")
    key = source.rsplit("/", 1)[1]
    url = f"{server['url']}/api/node/{key}/segmentation_meshes/key/{A}.ngmesh"
    r = requests.get(url, verify=server["cert"], timeout=10)
    assert r.ok and int(np.frombuffer(r.content[:4], np.uint32)[0]) > 0
    forged = url.replace(key, key.split("-")[0] + "-" + "0" * 32)
    assert requests.get(forged, verify=server["cert"], timeout=10).status_code == 401
