"""Declared ROIs through the neuPrint front door, with the real neuprint-python and navis.

Declared with `cxgraph roi add` on a workspace (16 x 64 x 128 voxels, z y x) and loaded
with `cxgraph load`::

    LEFT   box x 0..64            RIGHT  box x 64..128
    CORE   label 3 of a 4x-coarser label volume (z 4..12, y 8..24, x 8..24), inside LEFT

Synapses (id, pre, post, confidence, pre point, post point; post = pre + 1 in y, except 4)::

    1  A -> B  0.9   (5, 10, 10)        LEFT, CORE
    2  A -> B  0.8   (5, 30, 30)        LEFT
    3  A -> C  0.9   (5, 30, 70)        RIGHT
    4  B -> C  0.95  (5, 40, 60) -> (5, 40, 66)   pre LEFT, post RIGHT
    5  C -> A  0.3   (5, 50, 100)       RIGHT (below the 0.5 threshold: weightHR only)
"""

from __future__ import annotations

import json

import neuprint
import numpy as np
import polars as pl
import pytest
from neuprint import NeuronCriteria as NC
from neuprint_helpers import door
from typer.testing import CliRunner

from cxgraph.api.auth import TokenStore
from cxgraph.cli import app
from cxgraph.graph import GraphStore
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.meta import VOLUME_ROI
from cxgraph.graph.params import GraphParams
from cxgraph.graph.snapshot import from_workspace
from cxgraph.workspace import Workspace

A, B, C = 9007199254740993, 9007199254740995, 9007199254740997
HI = 0.5
SYNAPSES = [(1, A, B, 0.9, (5, 10, 10), (5, 11, 10)), (2, A, B, 0.8, (5, 30, 30), (5, 31, 30)),
            (3, A, C, 0.9, (5, 30, 70), (5, 31, 70)), (4, B, C, 0.95, (5, 40, 60), (5, 40, 66)),
            (5, C, A, 0.3, (5, 50, 100), (5, 51, 100))]
SHAPE = (16, 64, 128)


def cli(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def write_tables(ws: Workspace) -> None:
    cols = {"synapse_id": [s[0] for s in SYNAPSES], "pre_body": [s[1] for s in SYNAPSES],
            "post_body": [s[2] for s in SYNAPSES], "confidence": [s[3] for s in SYNAPSES]}
    for side, i in (("pre", 4), ("post", 5)):
        for k, axis in enumerate("zyx"):
            cols[f"{side}_{axis}"] = [float(s[i][k]) for s in SYNAPSES]
    ws.tables_dir.mkdir(exist_ok=True)
    pl.DataFrame(cols).write_parquet(ws.table_path("synapses"))
    pl.DataFrame({"body_id": [A, B, C], "type": ["KC", "MBON", "PN"],
                  "instance": ["KC_a", "MBON01", "PN_x"], "status": ["Traced"] * 3}
                 ).write_parquet(ws.table_path("bodies"))


@pytest.fixture(scope="module")
def server(neo4j_connection, tmp_path_factory):
    store = GraphStore(neo4j_connection, batch_size=500, query_timeout_s=60.0)
    store.clear()
    store.apply_schema()
    ws = Workspace.create(tmp_path_factory.mktemp("roi_ws"))
    seg = ws.create_array("segmentation", SHAPE, np.uint64, chunks=(8, 64, 64),
                          voxel_size=(40.0, 8.0, 8.0))
    seg[:] = 0
    labels = np.zeros((4, 16, 32), np.uint8)  # 4x coarser
    labels[1:3, 2:6, 2:6] = 3
    np.save(ws.root / "core.npy", labels)
    root = str(ws.root)
    cli("roi", "add", "LEFT", "-w", root, "--box", "0:16,0:64,0:64")
    cli("roi", "add", "RIGHT", "-w", root, "--box", "0:16,0:64,64:128")
    cli("roi", "add", "CORE", "-w", root, "--labels", "core.npy", "--label", "3",
        "--parent", "LEFT")
    assert [json.loads(line)["name"] for line in cli("roi", "list", "-w", root).splitlines()] \
        == ["LEFT", "RIGHT", "CORE"]
    for name in ("LEFT", VOLUME_ROI, "type"):  # declared, the volume, a body property
        assert CliRunner().invoke(app, ["roi", "add", name, "-w", root, "--box",
                                        "0:1,0:1,0:1"]).exit_code != 0
    write_tables(ws)
    params = GraphParams(post_high_accuracy_threshold=HI, post_hp_threshold=0.85)
    load_snapshot(store, from_workspace(ws), params)
    token, _ = TokenStore.for_workspace(ws.root).create("analyst", "read")
    with door(store, ws) as d:
        client = neuprint.Client(d["url"], token=token, verify=d["cert"], progress=False)
        yield {**d, "client": client, "store": store, "ws": ws, "params": params}
    store.close()


def test_meta_roi_info_and_hierarchy(server):
    c = server["client"]
    meta = neuprint.fetch_meta(client=c)
    assert meta["roiInfo"] == {VOLUME_ROI: {"pre": 5, "post": 5}, "LEFT": {"pre": 3, "post": 2},
                               "RIGHT": {"pre": 2, "post": 3}, "CORE": {"pre": 1, "post": 1}}
    assert sorted(meta["primaryRois"]) == ["CORE", "RIGHT"]  # the declared leaves
    assert sorted(meta["superLevelRois"]) == ["LEFT", "RIGHT"]
    assert neuprint.fetch_roi_hierarchy(client=c) == {
        "cxgraph": {VOLUME_ROI: {"LEFT": {"CORE*": {}}, "RIGHT*": {}}}}
    assert set(c.fetch_datasets()["cxgraph"]["ROIs"]) == {VOLUME_ROI, "LEFT", "RIGHT", "CORE"}
    assert "LEFT" not in json.loads(meta["neuronProperties"])  # booleans are not properties
    assert "roiParents" not in meta


def test_fetch_neurons_by_roi_with_per_roi_counts(server):
    c = server["client"]
    assert sorted(neuprint.fetch_neurons(NC(rois=["RIGHT"]), client=c)[0]["bodyId"]) == [A, C]
    assert sorted(neuprint.fetch_neurons(NC(rois=["CORE"]), client=c)[0]["bodyId"]) == [A, B]
    neurons, roi = neuprint.fetch_neurons(NC(bodyId=[A, B, C]), client=c)
    counts = {(r.bodyId, r.roi): (r.pre, r.post) for r in roi.itertuples()}
    assert counts[A, "LEFT"] == (2, 0) and counts[A, "RIGHT"] == (1, 1)
    assert counts[A, "CORE"] == (1, 0) and counts[B, "CORE"] == (0, 1)
    assert counts[B, "LEFT"] == (1, 2) and (B, "RIGHT") not in counts
    assert counts[C, "RIGHT"] == (1, 2) and counts[C, VOLUME_ROI] == (1, 2)
    a = neurons.set_index("bodyId").loc[A]
    assert sorted(a["inputRois"]) == ["RIGHT", VOLUME_ROI]  # A's one input (5) is in RIGHT


def test_fetch_adjacencies_per_roi_by_the_post_point(server):
    _, conn = neuprint.fetch_adjacencies([A, B, C], [A, B, C], client=server["client"])
    got = {(r.bodyId_pre, r.bodyId_post, r.roi): r.weight for r in conn.itertuples()}
    # the client keeps the primary ROIs (CORE, RIGHT) and sums the rest as "NotPrimary"
    assert got == {(A, B, "CORE"): 1, (A, B, "NotPrimary"): 1, (A, C, "RIGHT"): 1,
                   (B, C, "RIGHT"): 1}  # 4: pre LEFT, post RIGHT
    df = server["client"].fetch_custom(f"MATCH (:Segment {{bodyId: {A}}})-[e:ConnectsTo]->"
                                       f"(:Segment {{bodyId: {B}}}) RETURN e.roiInfo AS r")
    assert json.loads(df["r"][0]) == {VOLUME_ROI: {"pre": 2, "post": 2, "weightHP": 1},
                                      "LEFT": {"pre": 2, "post": 2, "weightHP": 1},
                                      "CORE": {"pre": 1, "post": 1, "weightHP": 1}}
    _, right = neuprint.fetch_adjacencies([A, B, C], [A, B, C], rois=["RIGHT"],
                                          client=server["client"])
    # the client also asks both bodies to touch the ROI: B's points are all in LEFT
    assert set(zip(right["bodyId_pre"], right["bodyId_post"], strict=True)) == {(A, C)}


def test_fetch_synapses_primary_roi(server):
    c = server["client"]
    df = neuprint.fetch_synapses(NC(bodyId=B), client=c)
    where = {(r.type, r.y): r.roi if isinstance(r.roi, str) else None for r in df.itertuples()}
    assert where == {("post", 11.0): "CORE", ("post", 31.0): None, ("pre", 40.0): None}
    df = neuprint.fetch_synapses(NC(bodyId=C), neuprint.SynapseCriteria(rois=["RIGHT"], client=c),
                                 client=c)
    assert sorted(df["y"]) == [31.0, 40.0] and set(df["roi"]) == {"RIGHT"}


def test_navis_fetch_roi_meshes(server):
    navis_neuprint = pytest.importorskip("navis.interfaces.neuprint")
    c = server["client"]
    right = navis_neuprint.fetch_roi("RIGHT", client=c)
    assert np.allclose(right.bounds.T, [[64, 128], [0, 64], [0, 16]])  # x, y, z voxels
    assert right.volume == pytest.approx(64 * 64 * 16)
    core = navis_neuprint.fetch_roi("CORE", client=c)  # zmesh of the 4x label: voxels
    assert np.allclose(core.bounds.T, [[8, 24], [8, 24], [4, 12]], atol=0.01)
    assert 0.6 < core.volume / (16 * 16 * 8) < 1  # marching cubes cuts the corners
    with pytest.raises(Exception, match="404"):
        c.fetch_roi_mesh("NOPE")


def test_removing_an_roi_clears_it_at_the_next_load(server):
    store, ws = server["store"], server["ws"]
    cli("roi", "remove", "RIGHT", "-w", str(ws.root))
    assert load_snapshot(store, from_workspace(ws), server["params"]).version == 2
    df = server["client"].fetch_custom(
        "MATCH (m:Meta) OPTIONAL MATCH (n) WHERE n.RIGHT RETURN m.roiInfo AS info, count(n) AS n")
    assert set(json.loads(df["info"][0])) == {VOLUME_ROI, "LEFT", "CORE"} and df["n"][0] == 0
    df = server["client"].fetch_custom("MATCH (s:Synapse) WHERE s.LEFT RETURN count(s) AS n")
    assert df["n"][0] == 5  # pre 1, 2, 4 and post 1, 2: still there


def test_bulk_import_files_carry_the_roi_booleans(server, tmp_path):
    """The neo4j-admin path (no server needed to write its files) writes the same ROIs."""
    from cxgraph.graph.bulk import write_import_files

    snap = from_workspace(server["ws"])  # LEFT and CORE now
    files = write_import_files(snap, tmp_path, server["params"])
    seg = pl.read_csv(files.directory / "segments.tsv", separator="\t")
    syn = pl.read_csv(files.directory / "synapses.tsv", separator="\t")
    assert sorted(seg.filter(pl.col("CORE:boolean"))["bodyId:long"]) == [A, B]
    assert syn["LEFT:boolean"].sum() == 5 and syn["CORE:boolean"].sum() == 2
    info = json.loads(seg.filter(pl.col("bodyId:long") == A)["roiInfo"][0])
    assert info["CORE"] == {"pre": 1, "post": 0, "upstream": 0, "downstream": 1}
