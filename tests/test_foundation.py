"""Configuration, workspace, provenance, blocks and executors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from cxgraph.config import Config
from cxgraph.errors import ConfigError, WorkspaceError
from cxgraph.provenance import ProvenanceStore, stage_run
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.engine.blocks import BlockGrid, Roi, check_chunk_aligned
from pipeline.segment.smooth import SmoothParams, smooth_volume

REPO = Path(__file__).resolve().parent.parent
SMALL = ["blocks.block_shape=[8,32,32]", "blocks.chunk_shape=[8,32,32]"]


def run_smooth(ws):
    return registry.run_pipeline(ws, only=["smooth"])[-1].stage_run_id


def make_ws(root, *overrides, shape=(16, 64, 64), seed=0):
    ws = Workspace.create(root, Config().with_overrides([*SMALL, *overrides]))
    raw = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    ws.create_array("aligned", raw.shape, raw.dtype, voxel_size=(40, 8, 8))[:] = raw
    return ws, raw


# --- config and workspace ------------------------------------------------------------


def test_config_round_trips_and_rejects_unknown_keys(tmp_path):
    cfg = Config().with_overrides(["blocks.block_shape=[8,16,16]", "blocks.chunk_shape=[8,16,16]",
                                   "executor.kind=dask"])
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert Config.load(path).to_dict() == cfg.to_dict()
    with pytest.raises(ConfigError, match="unknown parameter"):
        Config().with_overrides(["blocks.nonsense=1"])
    with pytest.raises(ConfigError, match="expected int"):
        Config().with_overrides(["executor.workers=many"])
    with pytest.raises(ConfigError, match="not a multiple"):
        Config().with_overrides(["blocks.block_shape=[8,16,16]"])
    with pytest.raises(ConfigError, match="three positive"):
        Config().with_overrides(["blocks.block_shape=[0,0,0]", "blocks.chunk_shape=[0,0,0]"])


def test_regional_parameters_round_trip_and_apply_to_their_region_only(tmp_path):
    cfg = Config().with_regional([0, 0, 0, 8, 64, 64], ["agglomerate.threshold=0.3"])
    cfg = cfg.with_regional([0, 0, 0, 8, 64, 64], ["agglomerate.threshold=0.35",
                                                   "affinities.normalise=block"])
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    loaded = Config.load(path)
    assert loaded.to_dict() == cfg.to_dict() and len(loaded.regional) == 1  # merged
    assert loaded["agglomerate"].threshold == 0.5  # the volume's own is untouched
    assert loaded.at([4, 32, 32, 12, 96, 96])["agglomerate"].threshold == 0.35
    assert loaded.at([8, 0, 0, 16, 64, 64])["agglomerate"].threshold == 0.5  # touches only
    [(region, params)] = loaded.regional_params("agglomerate")
    assert region == (0, 0, 0, 8, 64, 64) and params.threshold == 0.35
    assert loaded.regional_params("synapse_prediction") == []
    assert loaded.without_regional().to_dict() == Config().to_dict()
    with pytest.raises(ConfigError, match="unknown parameter"):
        Config().with_regional([0, 0, 0, 8, 64, 64], ["agglomerate.nonsense=1"])
    with pytest.raises(ConfigError, match="z0 < z1"):
        Config().with_regional([8, 0, 0, 0, 64, 64], ["agglomerate.threshold=0.3"])
    bad = cfg.to_toml().replace("agglomerate.threshold=0.35", "agglomerate.threshold=low")
    path.write_text(bad)
    with pytest.raises(ConfigError, match="expected float"):
        Config.load(path)


def test_workspace_layout_version_mismatch_is_explained(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    text = ws.config_path.read_text().replace("layout_version = 1", "layout_version = 99")
    ws.config_path.write_text(text)
    with pytest.raises(WorkspaceError, match="layout version 99"):
        Workspace.open(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="not a cxgraph workspace"):
        Workspace.open(tmp_path / "nothing")


# --- blocks --------------------------------------------------------------------------


def test_block_grid_covers_volume_once_with_clipped_context():
    grid = BlockGrid((10, 20, 30), (4, 8, 16), (1, 2, 2))
    blocks = grid.blocks()
    cover = np.zeros((10, 20, 30), int)
    for b in blocks:
        cover[b.write_roi.slices] += 1
        assert all(0 <= v <= s for v, s in zip(b.read_roi.end, (10, 20, 30), strict=True))
    assert (cover == 1).all()
    assert len({b.block_id for b in blocks}) == len(blocks) == 3 * 3 * 2
    assert grid.blocks()[0].read_roi == Roi((0, 0, 0), (5, 10, 18))
    assert [b.block_id for b in grid.blocks_in(Roi((0, 0, 0), (1, 1, 1)))] == [0]
    # ids follow the grid position, not the grid shape: the same block of a larger volume
    assert BlockGrid((20, 40, 60), (4, 8, 16)).block((1, 2, 1)).block_id == \
        grid.block((1, 2, 1)).block_id == (1 << 20) | (2 << 10) | 1
    with pytest.raises(ConfigError, match="not a multiple"):
        check_chunk_aligned((4, 8, 10), (4, 8, 16))


# --- provenance ------------------------------------------------------------------------


def test_stage_run_records_every_field_and_exports_parquet(tmp_path):
    ws, _ = make_ws(tmp_path / "ws")
    run_id = run_smooth(ws)
    store = ProvenanceStore(ws.provenance_path)
    row = store.query("SELECT * FROM stage_runs").to_pylist()
    assert len(row) == 1
    row = row[0]
    assert row["stage_run_id"] == run_id and row["status"] == "done" and row["layer"] == "L3"
    assert json.loads(row["params_json"]) == SmoothParams().to_dict()
    assert json.loads(row["inputs_json"])["aligned"]["sha256"] and row["input_hash"]
    assert json.loads(row["outputs_json"])["smoothed"]["sha256"] and row["output_hash"]
    assert len(row["code_revision"]) == 40 or row["code_revision"] == "unknown"
    assert len(row["code_fingerprint"]) == 64 and len(row["identity"]) == 64
    env = json.loads(row["environment_json"])
    assert {"host", "os", "python", "libraries"} <= set(env) and env["libraries"]["numpy"]
    assert row["device"] in ("cpu", "cuda:0") and row["wall_s"] > 0
    blocks = store.query("SELECT * FROM block_runs ORDER BY block_id").to_pylist()
    assert len(blocks) == 2 * 2 * 2
    for b in blocks:
        assert b["status"] == "done" and b["attempts"] == 1
        assert b["io_s"] > 0 and b["compute_s"] > 0 and b["peak_rss_mb"] > 0
        assert b["bytes_written"] == 8 * 32 * 32 and b["bytes_read"] > b["bytes_written"]
    # Parquet exports round-trip the store.
    for table in ("stage_runs", "stage_attempts", "block_runs", "output_blocks", "artifacts",
                  "quality", "runs", "models"):
        exported = pq.read_table(ws.tables_dir / "provenance" / f"{table}.parquet")
        assert exported.equals(store.query(f"SELECT * FROM {table}")), table
    quality = pq.read_table(ws.table_path("quality")).to_pylist()
    assert len(quality) == 8 and {q["metric"] for q in quality} == {"mean_intensity"}


def test_failed_stage_is_recorded_with_its_error(tmp_path):
    ws, _ = make_ws(tmp_path / "ws")
    with pytest.raises(RuntimeError, match="boom"):
        with stage_run(ws, "broken", "L1", {"x": 1}) as run:
            run.quality(metric="m", value=1.0, section=3)
            raise RuntimeError("boom")
    row = ProvenanceStore(ws.provenance_path).query("SELECT * FROM stage_runs").to_pylist()[0]
    assert row["status"] == "failed" and "boom" in row["error"]


def test_stage_run_attempts_are_kept_and_resume_names_the_run(tmp_path):
    ws, _ = make_ws(tmp_path / "ws")
    with pytest.raises(RuntimeError):
        with stage_run(ws, "noop", "L1", {"p": 1}) as run:
            raise RuntimeError("first attempt fails")
    with stage_run(ws, "noop", "L1", {"p": 1}, resume=run.stage_run_id) as again:
        pass
    store = ProvenanceStore(ws.provenance_path)
    assert again.stage_run_id == run.stage_run_id
    assert store.execute("SELECT attempts, status FROM stage_runs") == [(2, "done")]
    assert [r[:2] for r in store.execute(
        "SELECT attempt, status, error FROM stage_attempts ORDER BY attempt")] == \
        [(1, "failed"), (2, "done")]


def test_body_ids_are_minted_never_reused(tmp_path):
    from cxgraph import ids

    ws, _ = make_ws(tmp_path / "ws")
    store = ProvenanceStore(ws.provenance_path)
    first, second = store.mint_ids("body", 3), store.mint_ids("body", 2)
    assert list(first) == [1, 2, 3] and list(second) == [4, 5]
    assert ids.decode(ids.body_id(5)) == ids.IdParts("body", (0, 0, 0), 5)
    sv = ids.supervoxel_ids((3, 1, 2), np.array([[0, 7]]))
    assert sv[0, 0] == 0 and ids.decode(int(sv[0, 1])) == ids.IdParts("supervoxel", (3, 1, 2), 7)
    with pytest.raises(ConfigError, match="blocks per axis"):
        ids.block_id((1024, 0, 0))


# --- executors and resume ----------------------------------------------------------------

DRIVER = textwrap.dedent("""
    import sys
    from pipeline import registry
    from cxgraph.workspace import Workspace
    if __name__ == "__main__":
        registry.load()
        registry.run_pipeline(Workspace.open(sys.argv[1]), only=["smooth"])
""")


def test_killed_run_resumes_without_redoing_finished_blocks(tmp_path):
    shape = (32, 128, 128)  # 64 blocks: enough to kill it part-way
    ws, raw = make_ws(tmp_path / "ws", shape=shape)
    script = tmp_path / "drive.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(ws.root)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_before: dict[int, object] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with duckdb.connect(str(ws.provenance_path), read_only=True) as con:
                rows = con.execute("SELECT block_id, finished_at FROM block_runs "
                                   "WHERE status = 'done'").fetchall()
        except (duckdb.IOException, duckdb.CatalogException):
            rows = []  # the writer holds the lock, or the schema is not there yet
        if len(rows) >= 5:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    store = ProvenanceStore(ws.provenance_path)
    done_before = dict(store.execute(
        "SELECT block_id, finished_at FROM block_runs WHERE status = 'done'"))
    assert 5 <= len(done_before) < 64
    interrupted = store.execute("SELECT block_id FROM block_runs WHERE status = 'running'")
    assert store.execute("SELECT status FROM stage_runs") == [("running",)]

    run_smooth(ws)  # resume: the lock is free, so the dead run is marked interrupted first

    after = {r[0]: r[1:] for r in store.execute(
        "SELECT block_id, finished_at, attempts, status FROM block_runs")}
    assert len(after) == 64 and all(v[2] == "done" for v in after.values())
    for block_id, finished in done_before.items():  # finished blocks were not recomputed
        assert after[block_id][0] == finished and after[block_id][1] == 1
    for (block_id,) in interrupted:  # the block the kill interrupted shows two attempts
        assert after[block_id][1] == 2
    assert store.execute("SELECT attempts, status FROM stage_runs") == [(2, "done")]
    assert store.execute("SELECT attempt, status FROM stage_attempts ORDER BY attempt") == \
        [(1, "interrupted"), (2, "done")]
    ref, _ = make_ws(tmp_path / "ref", shape=shape)
    run_smooth(ref)
    assert np.array_equal(ws.array("smoothed")[:], ref.array("smoothed")[:])
    assert np.array_equal(ws.array("smoothed")[:], smooth_volume(raw, SmoothParams().sigma))
