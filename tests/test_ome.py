"""Volumes as OME-Zarr 0.5: read by independent readers (ome-zarr-models, tensorstore), with
their pyramids; the downsampling rules on tiny arrays with exact answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from align_synth import write_tileset

from cxgraph.config import Config
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.pyramid.downsample import Reducer, level_factors
from pipeline.pyramid.stage import LEVELS

SMALL = ["blocks.block_shape=[2,96,96]", "blocks.chunk_shape=[2,96,96]"]
registry.load()  # every stage registers its configuration section
VIEWED = ["ingest", "stitch", "align", "pyramid_raw", "pyramid_aligned"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("ome")
    write_tileset(root / "in", n_sections=4, missing=(2,), seed=5)
    ws = Workspace.create(root / "ws", Config().with_overrides(SMALL))
    registry.run_pipeline(ws, {"tile_dir": root / "in"}, only=VIEWED)
    return ws


def test_mean_leaves_no_data_out_and_is_exact_across_levels():
    data = np.array([[[10, 20, 0, 0], [30, 40, 0, 0]]], np.uint8)  # (1, 2, 4)
    r = Reducer(data, "mean", no_data=0)
    assert r.step((1, 2, 2)).tolist() == [[[25, 0]]]  # the empty group stays no-data
    assert r.step((1, 1, 2)).tolist() == [[[25]]]  # mean of the 4 valid voxels, not of 2 means


def test_mode_takes_the_most_frequent_nonzero_id():
    data = np.array([[[7, 0], [0, 0]], [[7, 9], [9, 9]]], np.uint64)  # (2, 2, 2)
    assert Reducer(data, "mode", None).step((2, 2, 2)).tolist() == [[[9]]]
    assert Reducer(np.zeros((1, 2, 2), np.uint64), "mode", None).step((1, 2, 2)).tolist() == \
        [[[0]]]
    tie = np.array([[[5, 3]]], np.uint32)  # a tie goes to the first in (z, y, x) order
    assert Reducer(tie, "mode", None).step((1, 1, 2)).tolist() == [[[5]]]


def test_level_factors_make_anisotropic_em_isotropic_before_halving_z():
    assert level_factors((40, 8, 8), (32, 128, 128), 4) == [(1, 2, 2), (1, 4, 4), (2, 8, 8),
                                                             (4, 16, 16)]
    assert level_factors((8, 8, 8), (2, 64, 64), 2) == [(2, 2, 2), (2, 4, 4)]  # capped by z


def test_volumes_are_ome_zarr_images_an_independent_reader_opens(ws):
    from ome_zarr_models.v05.image import Image

    vs = ws.array("aligned").attrs["voxel_size"]
    for name in ("raw", "aligned"):
        img = Image.from_zarr(zarr.open_group(str(ws.zarr_path / name), mode="r"))
        ms = img.attributes.ome.multiscales[0]
        assert [a.name for a in ms.axes] == ["z", "y", "x"]
        assert {a.unit for a in ms.axes} == {"nanometer"}
        assert [d.path for d in ms.datasets] == [f"s{k}" for k in range(LEVELS + 1)]
        scales = [d.coordinateTransformations[0].scale for d in ms.datasets]
        assert scales[0] == vs
        factors = level_factors(vs, ws.config["blocks"].block_shape, LEVELS)
        assert scales[1:] == [[v * f for v, f in zip(vs, fk, strict=True)] for fk in factors]
        assert ms.type == "mean"
        # translations put voxel centres: half a voxel of each level in from the corner
        shifts = [d.coordinateTransformations[1].translation for d in ms.datasets]
        assert shifts == [[v / 2 for v in sc] for sc in scales]
        assert zarr.open_array(str(ws.zarr_path / name / "s0")).metadata.dimension_names == (
            "z", "y", "x")
    # the tiles array is no image (axis 'tile'): a plain array, with its axes named
    tiles = zarr.open_array(str(ws.zarr_path / "tiles"))
    assert tiles.metadata.dimension_names == ("z", "tile", "y", "x")


def test_tensorstore_reads_levels_with_units_and_the_values_are_block_means(ws):
    import tensorstore as ts

    s0 = ws.array("aligned")[...]
    spec = {"driver": "zarr3", "kvstore": f"file://{ws.zarr_path}/aligned/s1"}
    s1 = ts.open(spec).result()
    vs = ws.array("aligned").attrs["voxel_size"]
    assert [u.multiplier for u in s1.dimension_units] == [vs[0], 2 * vs[1], 2 * vs[2]]
    assert [u.base_unit for u in s1.dimension_units] == ["nm"] * 3
    assert s1.domain.labels == ("z", "y", "x")
    got = s1.read().result()
    z = 0  # a present section: the mean of each 2 x 2 group of valid voxels
    g = s0[z, :2, :2].astype(float)
    want = np.rint(g[g > 0].mean()) if (g > 0).any() else 0
    assert got[z, 0, 0] == want
    assert (got[2] == 0).all()  # the missing section stays no-data at every level


def test_stamps_stay_on_the_image_group_and_levels_are_owned_by_their_stage(ws):
    meta = json.loads((ws.zarr_path / "aligned" / "zarr.json").read_text())["attributes"]
    assert meta["cxgraph"]["stage"] == "align" and "ome" in meta
    level = json.loads((ws.zarr_path / "aligned" / "s2" / "zarr.json").read_text())
    assert level["attributes"]["cxgraph"]["stage"] == "pyramid_aligned"


def test_a_label_volume_is_a_label_image(tmp_path):
    from ome_zarr_models.v05.image_label import ImageLabel

    ws = Workspace.create(tmp_path / "ws")
    ws.create_array("segmentation", (4, 32, 32), np.uint64, voxel_size=(40, 8, 8))
    lab = ImageLabel.from_zarr(zarr.open_group(str(ws.zarr_path / "segmentation"), mode="r"))
    assert lab.attributes.ome.image_label.source.image == "../aligned"


def test_reruns_replace_levels_and_metadata_lists_only_what_exists(ws, tmp_path):
    import shutil

    shutil.copytree(ws.root, tmp_path / "ws")
    w = Workspace.open(tmp_path / "ws")
    w.set_config(w.config.with_overrides(["align.blend_px=4"]))
    registry.run_pipeline(w, until="align")  # a new aligned: its old pyramid is gone with it
    meta = json.loads((w.zarr_path / "aligned" / "zarr.json").read_text())["attributes"]["ome"]
    assert [d["path"] for d in meta["multiscales"][0]["datasets"]] == ["s0"]
    assert not (w.zarr_path / "aligned" / "s1").exists()
    registry.run_pipeline(w, only=VIEWED)
    meta = json.loads((w.zarr_path / "aligned" / "zarr.json").read_text())["attributes"]["ome"]
    assert len(meta["multiscales"][0]["datasets"]) == LEVELS + 1
