"""L1 ingest and the `cxgraph run` command on tiny synthetic tile sets."""

from __future__ import annotations

import numpy as np
import pytest
from align_synth import write_tileset
from typer.testing import CliRunner

from cxgraph.config import Config
from cxgraph.errors import InputDataError
from cxgraph.workspace import Workspace
from pipeline.ingest.params import IngestParams
from pipeline.ingest.tiles import check_tile, estimate_flatfield, overlap_gains
from pipeline.registry import run_pipeline


def test_check_tile_statuses():
    p = IngestParams()
    rng = np.random.default_rng(0)
    ok = rng.integers(30, 220, (32, 32), dtype=np.uint8)
    assert check_tile(ok, (32, 32), np.dtype("uint8"), p)[0] == "ok"
    assert check_tile(np.full((32, 32), 7, np.uint8), (32, 32), np.dtype("uint8"), p)[0] == "blank"
    assert check_tile(ok[:16], (32, 32), np.dtype("uint8"), p)[0] == "wrong_shape"
    assert check_tile(ok.astype(np.uint16), (32, 32), np.dtype("uint8"), p)[0] == "wrong_dtype"
    sat = ok.copy()
    sat[:4] = 255
    assert check_tile(sat, (32, 32), np.dtype("uint8"), p)[0] == "saturated"


def test_flatfield_recovers_vignetting():
    yy, xx = np.mgrid[-1:1:64j, -1:1:64j]
    prof = 1.0 - 0.2 * (yy**2 + xx**2)
    rng = np.random.default_rng(1)
    samples = [(rng.uniform(80, 160, (64, 64)) * prof) for _ in range(60)]
    est = estimate_flatfield(samples, 4.0)
    want = prof / prof.mean()
    assert np.abs(est - want)[8:-8, 8:-8].max() < 0.03


def test_overlap_gains_match_tiles():
    rng = np.random.default_rng(2)
    base = rng.normal(120, 30, (64, 112))
    a, b = base[:, :64], base[:, 48:]
    gain, off = overlap_gains([a, 1.2 * b + 10], np.array([[0, 0], [0, 48]]), 8)
    ca, cb = gain[0] * a + off[0], gain[1] * (1.2 * b + 10) + off[1]
    assert abs(ca[:, 48:].mean() - cb[:, :16].mean()) < 0.5
    assert abs(ca[:, 48:].std() - cb[:, :16].std()) < 0.5


def _quality(ws: Workspace) -> dict:
    q = ws.read_table("quality").to_pydict()
    return q


def test_corrupt_tile_and_missing_section_are_marked(tmp_path):
    write_tileset(tmp_path / "in", n_sections=3, missing=(1,), corrupt=((2, 0, 1),))
    ws = Workspace.create(tmp_path / "ws")
    run_pipeline(ws, {"tile_dir": tmp_path / "in"}, until="ingest")
    t = ws.read_table("tiles").to_pydict()
    status = {(z, r, c): s for z, r, c, s in zip(t["z"], t["row"], t["col"], t["status"],
                                                 strict=True)}
    assert status[(2, 0, 1)] == "corrupt" and status[(1, 0, 0)] == "section_missing"
    assert status[(0, 0, 0)] == "ok"
    row = t["file"].index("tiles/z0002_r00_c01.tif")
    assert "unreadable" in t["reason"][row] and not t["used"][row]
    tiles = ws.array("tiles")
    assert tiles.shape == (3, 4, 96, 96) and not np.asarray(tiles[1]).any()
    assert np.asarray(tiles[0]).min() >= 1  # 0 is reserved for "no data"
    q = _quality(ws)
    bad = [(s, tl) for m, s, tl in zip(q["metric"], q["section"], q["tile"], strict=True)
           if m == "tile_bad"]
    assert bad == [(2, "tiles/z0002_r00_c01.tif")]
    metrics = {m for m, lay in zip(q["metric"], q["layer"], strict=True) if lay == "L1"}
    assert {"membrane_contrast", "snr", "saturated_fraction", "section_missing"} <= metrics


def test_stop_policy_raises_before_writing(tmp_path):
    write_tileset(tmp_path / "in", n_sections=2, corrupt=((1, 1, 1),))
    ws = Workspace.create(tmp_path / "ws", Config().with_overrides(["ingest.on_bad_tile=stop"]))
    with pytest.raises(InputDataError, match=r"z=1 row=1 col=1 tiles/z0001_r01_c01.tif"):
        run_pipeline(ws, {"tile_dir": tmp_path / "in"}, until="ingest")
    assert not ws.has_array("tiles") and not ws.table_path("tiles").exists()


def test_cli_run_until_align_on_fresh_workspace(tmp_path):
    from cxgraph.cli import app

    truth = write_tileset(tmp_path / "in", n_sections=5, missing=(3,))
    ws_dir = tmp_path / "ws"
    res = CliRunner().invoke(app, ["run", "--input", str(tmp_path / "in"), "--workspace",
                                   str(ws_dir), "--until", "align",
                                   "--set", "align.pair_patch_px=48",
                                   "--set", "align.patch_px=64",
                                   "--set", "align.patch_stride_px=48"])
    assert res.exit_code == 0, res.output
    assert "align:" in res.output
    ws = Workspace.open(ws_dir)
    aligned = ws.array("aligned")
    assert aligned.shape == (5, 176, 176)
    assert aligned.attrs["voxel_size"] == [40.0, 8.0, 8.0]
    assert aligned.attrs["missing_sections"] == [3]
    assert not np.asarray(aligned[3]).any() and np.asarray(aligned[2]).mean() > 50
    q = _quality(ws)
    l2_section = {m for m, lay, s in zip(q["metric"], q["layer"], q["section"], strict=True)
                  if lay == "L2" and s is not None}
    l2_block = {m for m, lay, b in zip(q["metric"], q["layer"], q["block"], strict=True)
                if lay == "L2" and b is not None}
    assert {"residual_mean_px", "residual_p95_px", "residual_max_px", "drift_px",
            "match_ncc_mean", "matches_rejected", "alignment_fault",
            "section_missing"} <= l2_section
    assert {"residual_mean_px", "coverage"} <= l2_block
    flagged = {s for m, s, v in zip(q["metric"], q["section"], q["value"], strict=True)
               if m == "section_missing" and v}
    assert flagged == {3}
    # translations: solved D_z vs true d_z (with the stitch gauge), one constant removed
    st = ws.read_table("section_transforms").to_pydict()
    est = {z: np.array([dy, dx]) for z, dy, dx, u in zip(st["z"], st["dy"], st["dx"],
                                                          st["usable"], strict=True) if u}
    err = np.array([est[z] - (d - np.mean(list(p.values()), axis=0) + [40.0, 40.0])
                    for z, (d, p) in truth.items()])
    err -= err.mean(axis=0)
    assert np.abs(err).max() < 0.5
