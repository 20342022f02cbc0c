"""The synthetic microscope: ground-truth consistency, the microscope, faults, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from phantom_helpers import load, noise_sd, tile_vs_em

from cxgraph.errors import ConfigError, InputDataError
from pipeline.ingest.manifest import read_tile
from pipeline.phantom import PhantomParams, render_phantom
from pipeline.phantom.faults import resolve
from pipeline.phantom.io import load_labels
from pipeline.phantom.microscope import section_offsets, tile_grid
from pipeline.phantom.render import boundaries_yx

FAULTS = (
    "staining-gradient:toward=x+,strength=0.7",
    "low-contrast:z=2:6,y=0:96,x=0:96,strength=0.7",
    "missing-section:z=5",
    "damaged-section:z=8,type=fold,width=16,angle=90",
    "tile-misplacement:z=3,row=1,col=1,shift=30,angle=0",
    "alignment-fault:z=10:12,shift=35,angle=90",
    "noise-burst:z=12,strength=0.8",
)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    res = render_phantom(out, PhantomParams(shape=(16, 256, 256), seed=5, faults=FAULTS),
                         preview=True)
    return out, res, load(out)


def test_manifest_layout(phantom):
    out, res, d = phantom
    m = d["manifest"]
    assert m["format"] == "cxgraph-tiles/1"
    assert m["shape"] == [16, 256, 256] and m["voxel_size"] == [40.0, 8.0, 8.0]
    assert m["dtype"] == "uint8" and len(m["sections"]) == 16
    th, tw = m["tile_shape"]
    for s in m["sections"]:
        for t in s["tiles"]:
            img = read_tile(out / t["file"])
            assert img.dtype == np.uint8 and img.shape == (th, tw)
    assert d["labels"].dtype == np.uint64 and d["labels"].shape == (16, 256, 256)
    assert d["em"].shape == (16, 256, 256)
    params = json.loads((out / "phantom.json").read_text())
    assert params["seed"] == 5 and params["params"]["faults"] == list(FAULTS)
    assert (out / "preview" / "section.png").exists() and (out / "preview" / "tiles.png").exists()


def test_synapses_lie_on_contacts(phantom):
    _, res, d = phantom
    s, lab = d["synapses"], d["labels"]
    assert res.n_synapses >= 1 and len(s["synapse_id"]) == res.n_synapses
    for i in range(len(s["synapse_id"])):
        pre = tuple(s[f"pre_{a}"][i] for a in "zyx")
        post = tuple(s[f"post_{a}"][i] for a in "zyx")
        assert s["pre_id"][i] != s["post_id"][i]
        assert lab[pre] == s["pre_id"][i] and lab[post] == s["post_id"][i]
        # within a few voxels of a contact with the partner
        for p, other in ((pre, s["post_id"][i]), (post, s["pre_id"][i])):
            win = lab[max(0, p[0] - 1): p[0] + 2, max(0, p[1] - 4): p[1] + 5,
                      max(0, p[2] - 4): p[2] + 5]
            assert (win == other).any(), f"synapse {i}: no partner voxel near {p}"
    kinds = dict(zip(d["bodies"]["body_id"], d["bodies"]["kind"], strict=True))
    assert all(kinds[p] == "axon" for p in s["pre_id"])
    assert all(kinds[p] in ("dendrite", "soma") for p in s["post_id"])


def test_tile_overlap_and_placement(phantom):
    _, _, d = phantom
    m = d["manifest"]
    tw = m["tile_shape"][1]
    tiles = m["sections"][0]["tiles"]
    xs = sorted({t["x"] for t in tiles})
    ys = sorted({t["y"] for t in tiles})
    assert len(xs) >= 2 and len(ys) >= 2
    for a, b in zip(xs, xs[1:], strict=False):
        assert 0.05 <= 1 - (b - a) / tw <= 0.15
    t = d["tiles"]
    err = np.hypot(np.array(t["y"]) - t["y_nominal"], np.array(t["x"]) - t["x_nominal"])
    misplaced = [(z, r, c) == (3, 1, 1) for z, r, c in zip(t["z"], t["row"], t["col"],
                                                         strict=True)]
    assert np.all(err[~np.array(misplaced)] < 8)  # small placement error (sd 1.5 px)
    assert abs(err[np.array(misplaced)][0] - 30) <= 6  # shift + the usual small error


def test_tiles_come_from_where_ground_truth_says(phantom):
    out, _, d = phantom
    for z in (0, 7, 11):  # 11 is inside the alignment-fault band
        c = tile_vs_em(out, d, z, 0, 0)
        assert c > 0.8, (z, c)
        for e in ((0, 2), (2, 0), (0, -2)):
            assert tile_vs_em(out, d, z, 0, 0, e) < c - 0.05


def test_section_offsets_accumulate_drift(phantom):
    _, _, d = phantom
    s = d["sections"]
    total = np.array(s["dy"])
    parts = np.array(s["drift_dy"]) + s["jitter_dy"] + s["fault_dy"]
    assert np.allclose(total, parts)
    # drift is a random walk: its spread grows with z (mean squared displacement ~ z)
    p = PhantomParams(shape=(64, 64, 64), drift_step_px=0.6, section_jitter_px=0.0)
    walks = np.array([section_offsets(64, [], p, np.random.default_rng(k))["drift_dx"]
                      for k in range(200)])
    msd = (walks ** 2).mean(axis=0)
    assert msd[60] > 5 * msd[6]
    assert 0.6 * 60 * 0.36 < msd[60] < 1.4 * 60 * 0.36


def test_staining_gradient_lowers_membrane_contrast(phantom):
    _, _, d = phantom
    em, lab = d["em"].astype(float), d["labels"]
    memb = boundaries_yx(lab)
    cyto = ~memb & (lab > 0)
    cyto &= ~boundaries_yx(np.pad(lab, ((0, 0), (2, 2), (2, 2)))[:, 4:, 2:-2])  # 2 px inside

    def contrast(xs: slice) -> float:
        sl = (slice(6, 16), slice(None), xs)  # away from the low-contrast box
        return em[sl][cyto[sl]].mean() - em[sl][memb[sl]].mean()

    far, near = contrast(slice(0, 80)), contrast(slice(230, 256))
    region = next(f for f in d["faults"] if f["kind"] == "staining-gradient")["region"]
    assert region["x"][1] == 256 and region["x"][0] < 230
    assert near < 0.6 * far, (near, far)


def test_low_contrast_box(phantom):
    _, _, d = phantom
    em = d["em"].astype(float)
    inside = em[2:6, 0:96, 0:96].std()
    outside = em[2:6, 0:96, 100:196].std()
    assert inside < 0.5 * outside


def test_missing_damaged_alignment_noise(phantom):
    out, _, d = phantom
    secs = d["manifest"]["sections"]
    assert secs[5]["status"] == "missing" and secs[5]["tiles"] == []
    assert not list(out.glob("tiles/z0005_*"))
    assert 5 not in d["tiles"]["z"]
    assert secs[8]["status"] == "ok"  # the microscope does not know about the fold
    worst_damaged = min(tile_vs_em(out, d, 8, r, c) for r in range(3) for c in range(3))
    worst_ok = min(tile_vs_em(out, d, 7, r, c) for r in range(3) for c in range(3))
    assert worst_damaged < worst_ok - 0.15, (worst_damaged, worst_ok)
    fdy = np.array(d["sections"]["fault_dy"])
    assert np.allclose(fdy[10:12], 35.0) and np.allclose(np.delete(fdy, [10, 11]), 0.0)
    dy = np.array(d["sections"]["dy"])
    assert dy[10] - dy[9] > 25
    sd = {z: noise_sd(read_tile(out / f"tiles/z{z:04d}_r01_c01.tif")) for z in (11, 12, 13)}
    assert sd[12] > 2 * max(sd[11], sd[13]), sd


def test_determinism(tmp_path):
    p = PhantomParams(shape=(8, 128, 128), seed=11, faults=("noise-burst",))
    a, b, c = (tmp_path / n for n in "abc")
    render_phantom(a, p)
    render_phantom(b, p)
    render_phantom(c, p.replace(seed=12))
    da, db, dc = load(a), load(b), load(c)
    assert np.array_equal(da["labels"], db["labels"]) and np.array_equal(da["em"], db["em"])
    assert da["synapses"] == db["synapses"] and da["sections"] == db["sections"]
    for f in sorted(a.glob("tiles/*.tif")):
        assert np.array_equal(read_tile(f), read_tile(b / "tiles" / f.name))
    assert not np.array_equal(da["labels"], dc["labels"])


def test_render_from_user_labels(tmp_path):
    rng = np.random.default_rng(0)
    seeds = rng.random((40, 3)) * (12 * 40, 128 * 8, 128 * 8)
    from scipy.spatial import cKDTree

    g = np.stack(np.meshgrid(np.arange(12) * 40.0, np.arange(128) * 8.0, np.arange(128) * 8.0,
                             indexing="ij"), axis=-1).reshape(-1, 3)
    user = (cKDTree(seeds).query(g)[1].reshape(12, 128, 128) * 7 + 1000).astype(np.int32)
    np.save(tmp_path / "seg.npy", user)
    lab = load_labels(tmp_path / "seg.npy")
    res = render_phantom(tmp_path / "out", PhantomParams(shape=(2, 64, 64)), labels=lab)
    d = load(tmp_path / "out")
    assert res.shape == (12, 128, 128)
    assert np.array_equal(d["labels"], user.astype(np.uint64))
    s = d["synapses"]
    assert len(s["synapse_id"]) >= 1
    for i in range(len(s["synapse_id"])):
        assert user[s["pre_z"][i], s["pre_y"][i], s["pre_x"][i]] == s["pre_id"][i]
        assert user[s["post_z"][i], s["post_y"][i], s["post_x"][i]] == s["post_id"][i]
        assert s["pre_id"][i] != s["post_id"][i]


@pytest.mark.parametrize("spec, message", [
    ("fold-everything", "unknown kind"),
    ("missing-section:z=40", "outside the volume"),
    ("low-contrast:z=0:4,y=0:300", "outside the volume"),
    ("noise-burst:strength=3", "strength=3.0 outside"),
    ("staining-gradient:toward=up", "toward expects"),
    ("damaged-section:type=tear", "fold or crack"),
    ("tile-misplacement:row=9", "row=9.0 outside"),
    ("missing-section:colour=red", "unknown key"),
])
def test_bad_fault_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        resolve((spec,), (8, 128, 128), (3, 3), np.random.default_rng(0))


def test_shape_too_small():
    with pytest.raises(ConfigError, match="at least"):
        PhantomParams(shape=(1, 32, 32))
    with pytest.raises(ConfigError, match="at least 4 sections"):
        resolve(("alignment-fault",), (3, 128, 128), (3, 3), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="all 3 sections"):
        resolve(("missing-section:z=0:3",), (3, 128, 128), (3, 3), np.random.default_rng(0))


def test_bad_labels_files(tmp_path):
    with pytest.raises(InputDataError, match="no such file"):
        load_labels(tmp_path / "nope.npy")
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    with pytest.raises(InputDataError, match="cannot read"):
        load_labels(tmp_path / "junk.npy")
    np.save(tmp_path / "flat.npy", np.ones((4, 4), dtype=np.int32))
    with pytest.raises(InputDataError, match="3-D"):
        load_labels(tmp_path / "flat.npy")
    np.save(tmp_path / "float.npy", np.ones((2, 4, 4), dtype=np.float32))
    with pytest.raises(InputDataError, match="integer"):
        load_labels(tmp_path / "float.npy")
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(InputDataError, match="unknown format"):
        load_labels(tmp_path / "x.h5")


def test_tile_grid_overlap_in_range():
    for size in (64, 100, 256, 512, 1000):
        g = tile_grid((size, size), 0, 0.10)
        assert 0.05 <= g.overlap <= 0.15
        assert g.extent[0] >= size and g.extent[1] >= size


def test_cli(tmp_path):
    from typer.testing import CliRunner

    from cxgraph.cli import app

    r = CliRunner().invoke(app, ["phantom", "--out", str(tmp_path / "p"), "--shape",
                                 "6,96,96", "--fault", "missing-section:z=2", "--seed", "3"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert m["sections"][2]["status"] == "missing"
    r = CliRunner().invoke(app, ["phantom", "--out", str(tmp_path / "lo"), "--shape", "3,96,96",
                                 "--preset", "low-dose"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "lo" / "phantom.json").read_text())["params"]["preset"] == (
        "low-dose")
    r = CliRunner().invoke(app, ["phantom", "--out", str(tmp_path / "q"), "--shape", "6,96,96",
                                 "--preset", "bright"])
    assert isinstance(r.exception, ConfigError)
    r = CliRunner().invoke(app, ["phantom", "--out", str(tmp_path / "q"), "--shape", "6,96,96",
                                 "--fault", "bogus"])
    assert isinstance(r.exception, ConfigError)
    r = CliRunner().invoke(app, ["phantom", "--out", str(tmp_path / "q"), "--labels",
                                 str(tmp_path / "missing.tif")])
    assert isinstance(r.exception, InputDataError)


def test_paths_are_relative(phantom):
    out, _, d = phantom
    for s in d["manifest"]["sections"]:
        for t in s["tiles"]:
            assert not Path(t["file"]).is_absolute() and t["file"].startswith("tiles/")


def test_first_pass_parameters_still_load():
    old = {**PhantomParams().to_dict(), "bright": 225.0, "dark": 30.0,
           "blur_sigma_px": [0.5, 1.0, 1.0], "min_contact_vx": 12, "cleft_radius_nm": 170.0}
    p = PhantomParams.from_dict(old, where="phantom")
    assert p.cleft_radius_nm == (170.0, 170.0)
    with pytest.raises(ConfigError, match="unknown parameter"):
        PhantomParams.from_dict({"brightness": 1.0}, where="phantom")
