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
from pipeline.blocks import BlockGrid, Roi, check_chunk_aligned
from pipeline.smooth import SmoothParams, run_smooth, smooth_volume

REPO = Path(__file__).resolve().parent.parent
SMALL = ["blocks.block_shape=[8,32,32]", "blocks.chunk_shape=[8,32,32]"]


def make_ws(root, *overrides, shape=(16, 64, 64), seed=0):
    ws = Workspace.create(root, Config().with_overrides([*SMALL, *overrides]))
    raw = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    ws.create_array("aligned", raw.shape, raw.dtype, voxel_size=(40, 8, 8))[:] = raw
    return ws, raw


# --- config and workspace ------------------------------------------------------------


def test_config_round_trips_and_rejects_unknown_keys(tmp_path):
    cfg = Config().with_overrides(["blocks.block_shape=[8,16,16]", "executor.kind=dask"])
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert Config.load(path).to_dict() == cfg.to_dict()
    with pytest.raises(ConfigError, match="unknown parameter"):
        Config().with_overrides(["blocks.nonsense=1"])
    with pytest.raises(ConfigError, match="expected int"):
        Config().with_overrides(["executor.workers=many"])


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
    assert json.loads(row["inputs_json"])["source"]["sha256"] and row["input_hash"]
    assert json.loads(row["outputs_json"])["target"]["sha256"] and row["output_hash"]
    assert len(row["code_revision"]) == 40 or row["code_revision"] == "unknown"
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
    for table in ("stage_runs", "block_runs", "artifacts", "quality", "runs", "models"):
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


def test_resumed_stage_run_keeps_its_declared_outputs(tmp_path):
    ws, _ = make_ws(tmp_path / "ws")
    for declare in (True, False):  # the second run finds its work done and declares nothing
        with stage_run(ws, "noop", "L1", {"p": 1}, inputs={"a": "aligned"}) as run:
            if declare:
                run.output("copy", "aligned")
    row = ProvenanceStore(ws.provenance_path).execute(
        "SELECT attempts, outputs_json FROM stage_runs")[0]
    assert row[0] == 2 and json.loads(row[1])["copy"]["sha256"]


def test_rerun_is_idempotent(tmp_path):
    ws, raw = make_ws(tmp_path / "ws")
    first = run_smooth(ws)
    out1 = ws.array("smoothed")[:]
    second = run_smooth(ws)
    store = ProvenanceStore(ws.provenance_path)
    assert first == second
    assert store.execute("SELECT count(*), max(attempts) FROM block_runs")[0] == (8, 1)
    assert store.execute("SELECT count(*) FROM quality")[0][0] == 8
    assert np.array_equal(out1, ws.array("smoothed")[:])
    assert np.array_equal(out1, smooth_volume(raw, SmoothParams().sigma))


def test_region_rerun_touches_only_its_blocks(tmp_path):
    ws, _ = make_ws(tmp_path / "ws")
    run_smooth(ws, region=Roi((0, 0, 0), (8, 32, 32)))
    store = ProvenanceStore(ws.provenance_path)
    assert store.execute("SELECT list(block_id) FROM block_runs")[0][0] == [0]
    assert ws.array("smoothed")[8:].max() == 0  # blocks outside the region untouched


# --- executors and resume ----------------------------------------------------------------

DRIVER = textwrap.dedent("""
    import sys
    from cxgraph.workspace import Workspace
    from pipeline.smooth import run_smooth
    if __name__ == "__main__":
        run_smooth(Workspace.open(sys.argv[1]))
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

    run_smooth(ws)  # resume

    after = {r[0]: r[1:] for r in store.execute(
        "SELECT block_id, finished_at, attempts, status FROM block_runs")}
    assert len(after) == 64 and all(v[2] == "done" for v in after.values())
    for block_id, finished in done_before.items():  # finished blocks were not recomputed
        assert after[block_id][0] == finished and after[block_id][1] == 1
    for (block_id,) in interrupted:  # the block the kill interrupted shows two attempts
        assert after[block_id][1] == 2
    assert store.execute("SELECT attempts, status FROM stage_runs") == [(2, "done")]
    ref, _ = make_ws(tmp_path / "ref", shape=shape)
    run_smooth(ref)
    assert np.array_equal(ws.array("smoothed")[:], ref.array("smoothed")[:])
    assert np.array_equal(ws.array("smoothed")[:], smooth_volume(raw, SmoothParams().sigma))


def test_dask_output_is_byte_identical_to_serial(tmp_path):
    serial, _ = make_ws(tmp_path / "serial")
    dask_ws, _ = make_ws(tmp_path / "dask", "executor.kind=dask", "executor.workers=2")
    run_smooth(serial)
    run_smooth(dask_ws)
    chunks = sorted(p.relative_to(serial.zarr_path / "smoothed")
                    for p in (serial.zarr_path / "smoothed").rglob("*") if p.is_file()
                    and p.name != "zarr.json")
    assert len(chunks) == 8
    for c in chunks:
        assert (serial.zarr_path / "smoothed" / c).read_bytes() == \
            (dask_ws.zarr_path / "smoothed" / c).read_bytes(), c
    workers = ProvenanceStore(dask_ws.provenance_path).execute(
        "SELECT count(DISTINCT worker) FROM block_runs")[0][0]
    assert workers >= 1
