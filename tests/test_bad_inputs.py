"""Issue 14, pipeline side: every bad input is a clear ``error:`` line (a CxgraphError) with
nothing written, and a re-run after the fix works; nothing is fixed by refusing valid
input. Each test names the case of the issue it covers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from align_synth import write_tileset

from cxgraph.errors import InputDataError
from cxgraph.workspace import Workspace
from pipeline.ingest.manifest import read_manifest, read_tile, write_tile
from pipeline.registry import run_pipeline


def cli(args: list[str], capsys) -> tuple[int, str]:
    """``cxgraph ARGS`` through the real entry point (``cxgraph.cli.main``): exit code and
    stderr. An exception other than SystemExit escapes: that is a traceback."""
    from cxgraph import cli as cli_mod

    argv = sys.argv
    sys.argv = ["cxgraph", *map(str, args)]
    try:
        cli_mod.main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def tileset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiles") / "in"
    write_tileset(d, n_sections=2)
    return d


def with_manifest(src: Path, dst: Path, change) -> Path:
    """A copy of the tile set ``src`` whose manifest ``change(data)`` edited (or replaced)."""
    shutil.copytree(src, dst)
    data = json.loads((dst / "manifest.json").read_text())
    out = change(data)
    (dst / "manifest.json").write_text(json.dumps(data if out is None else out))
    return dst


def tile0(data: dict) -> dict:
    return data["sections"][0]["tiles"][0]


# (case of issue 14, edit of a good manifest, what the message must name)
BAD_MANIFESTS = [
    ("traceback: shape as a string", lambda m: m.update(shape="16,256,256"), "shape"),
    ("traceback: shape with a word", lambda m: m.update(shape=[2, "a", 176]), "shape[1]"),
    ("traceback: sections as an object", lambda m: m.update(sections={"0": {}}), "sections"),
    ("traceback: tile y null", lambda m: tile0(m).update(y=None),
     "sections[0].tiles[0].y"),
    ("traceback: manifest is a JSON array", lambda m: [m], "JSON object"),
    ("traceback: negative Y size", lambda m: m.update(shape=[2, -176, 176]), "shape[1]"),
    ("traceback: row 10^7 (MemoryError)", lambda m: tile0(m).update(row=10**7), "row 10000000"),
    ("traceback: col 10^7 (MemoryError)", lambda m: tile0(m).update(col=10**7), "col 10000000"),
    ("silent: shape [2, 0, 0]", lambda m: m.update(shape=[2, 0, 0]), "shape[1]"),
    ("silent: NaN tile position", lambda m: tile0(m).update(y=float("nan")),
     "sections[0].tiles[0].y"),
    ("silent: 1e12 tile position", lambda m: tile0(m).update(x=1e12), "x=1e+12"),
    ("silent: row -1 dropped", lambda m: tile0(m).update(row=-1), "sections[0].tiles[0].row"),
    ("silent: two tiles at one position",
     lambda m: m["sections"][0]["tiles"][1].update(row=0, col=0), "both claim row 0, col 0"),
    ("silent: section z out of range", lambda m: m["sections"][1].update(z=5),
     "sections[1].z = 5"),
    ("read outside: absolute tile path", lambda m: tile0(m).update(file="/etc/hostname"),
     "sections[0].tiles[0].file"),
    ("read outside: ../ tile path", lambda m: tile0(m).update(file="../../../etc/hostname"),
     "sections[0].tiles[0].file"),
    ("unknown pixel type", lambda m: m.update(dtype="complex64"), "dtype"),
    ("voxel size zero", lambda m: m.update(voxel_size=[40, 0, 8]), "voxel_size[1]"),
    # every size bounded by what the machine can hold, before anything is allocated
    ("size: 10^9 sections", lambda m: m.update(shape=[10**9, 176, 176]),
     "shape[0] = 1000000000"),
    ("size: 10^7 x 10^7 section", lambda m: m.update(shape=[2, 10**7, 10**7]),
     "10000000x10000000 canvas"),
    ("size: 10^6 px tiles", lambda m: m.update(tile_shape=[10**6, 10**6]),
     "1000000x1000000 tiles"),
]


@pytest.mark.parametrize("case,change,names", BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS])
def test_bad_manifest_is_one_clear_error(tileset, tmp_path, case, change, names):
    """Issue 14, manifest cases (tracebacks, silent wrong results, paths outside the input
    directory): validated once, up front, with a message naming field, value, expectation."""
    d = with_manifest(tileset, tmp_path / "in", change)
    with pytest.raises(InputDataError) as e:
        read_manifest(d)
    assert names in str(e.value), str(e.value)
    assert "expected" in str(e.value) or "Input should" in str(e.value)


def test_good_manifest_and_extras_still_accepted(tileset, tmp_path):
    """Nothing is fixed by refusing valid input: extra keys, integer positions, a tile partly
    outside the volume, uint16 and a declared float range all pass."""
    def change(m):
        m["microscope"] = {"name": "any"}
        tile0(m).update(y=-10, x=0)
        m["dtype"] = "uint16"

    m = read_manifest(with_manifest(tileset, tmp_path / "in", change))
    assert m.sections[0].tiles[0].y == -10.0 and m.dtype == np.dtype("uint16")
    m = read_manifest(with_manifest(tileset, tmp_path / "in2", lambda d: d.update(
        dtype="float32", intensity_range=[0, 1])))
    assert m.intensity_range == (0.0, 1.0)


def test_bad_manifest_through_cli_writes_nothing_and_rerun_works(tileset, tmp_path, capsys):
    """Issue 14: a bad input is a clear `error:` line, nothing half-written, and re-running
    after the fix is idempotent (tile `row: -1` case)."""
    bad = with_manifest(tileset, tmp_path / "in", lambda m: tile0(m).update(row=-1))
    ws = tmp_path / "ws"
    code, err = cli(["run", "-w", ws, "--input", bad, "--until", "ingest"], capsys)
    assert code == 1 and err.startswith("error:") and "row" in err and "Traceback" not in err
    assert not Workspace.open(ws).has_array("tiles")
    assert not (ws / "tables" / "tiles.parquet").exists()
    tile0_fixed = json.loads((tileset / "manifest.json").read_text())
    (bad / "manifest.json").write_text(json.dumps(tile0_fixed))
    assert cli(["run", "-w", ws, "--input", bad, "--until", "ingest"], capsys)[0] == 0
    assert Workspace.open(ws).array("tiles").shape == (2, 4, 96, 96)
    # the provenance Parquet mirror says how each run ended (it said 'interrupted', with
    # no end time, for the latest run: the lock marked the run that had just begun)
    runs = pl.read_parquet(ws / "tables" / "provenance" / "runs.parquet").sort("started_at")
    assert runs["status"].to_list() == ["failed", "done"]
    assert runs["finished_at"].null_count() == 0


@pytest.mark.parametrize("case,change,names", BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS])
def test_every_bad_manifest_through_cli_is_one_error_line_and_writes_nothing(
        tileset, tmp_path, capsys, case, change, names):
    """Issue 14: each manifest case through `cxgraph run`, as a user meets it: exit 1, one
    `error:` line naming the field, and no array or table written."""
    ws = tmp_path / "ws"
    code, err = cli(["run", "-w", ws, "--input", with_manifest(tileset, tmp_path / "in", change),
                     "--until", "ingest"], capsys)
    assert code == 1 and err.startswith("error:") and "Traceback" not in err, err
    assert names in err, err
    # no stage output: at most the (empty) quality table and the failed run's provenance
    written = {p.name for p in (ws / "tables").glob("*.parquet")}  # none without a workspace
    assert written <= {"quality.parquet"}, written
    if written:
        assert pl.read_parquet(ws / "tables" / "quality.parquet").height == 0
        assert not Workspace.open(ws).has_array("tiles")
        runs = pl.read_parquet(ws / "tables" / "provenance" / "runs.parquet")
        assert runs["status"].to_list() == ["failed"]  # in its Parquet mirror too


# --- tiles -------------------------------------------------------------------------------
def float_tileset(src: Path, dst: Path, scale: float, nan_tile: str | None = None,
                  declare: bool = False) -> Path:
    """``src`` with every tile as float32 grey / 255 * scale; one tile all-NaN-spotted."""
    shutil.copytree(src, dst)
    data = json.loads((dst / "manifest.json").read_text())
    for s in data["sections"]:
        for t in s["tiles"]:
            img = read_tile(dst / t["file"]).astype(np.float32) / 255.0 * scale
            if t["file"] == nan_tile:
                img[::5, ::7] = np.nan
            write_tile(dst / t["file"], img)
    data["dtype"] = "float32"
    if declare:
        data["intensity_range"] = [0.0, scale]
    (dst / "manifest.json").write_text(json.dumps(data))
    return dst


def ingest(tmp_path: Path, name: str, tiles: Path) -> Workspace:
    ws = Workspace.create(tmp_path / name)
    run_pipeline(ws, {"tile_dir": tiles}, until="ingest")
    return ws


def test_nan_tile_is_marked_and_does_not_destroy_the_volume(tileset, tmp_path):
    """Issue 14, silent wrong result: one NaN tile made intensity_map NaN and every tile 0.
    Now that tile is `non_finite` (not used), the map is finite, the others normalised."""
    nan_file = "tiles/z0001_r01_c00.tif"
    ws = ingest(tmp_path, "ws", float_tileset(tileset, tmp_path / "in", 1.0, nan_file))
    t = ws.read_table("tiles").to_pydict()
    status = dict(zip(t["file"], t["status"], strict=True))
    assert status.pop(nan_file) == "non_finite"
    assert set(status.values()) == {"ok"}
    tiles = ws.array("tiles")
    imap = tiles.attrs["intensity_map"]
    assert np.isfinite([imap["low"], imap["high"]]).all()
    data = np.asarray(tiles[:])
    assert not data[1, 2].any()  # the NaN tile: no data
    for z, i in [(0, 0), (0, 3), (1, 0), (1, 3)]:
        assert data[z, i].min() >= 1 and data[z, i].std() > 10


@pytest.mark.parametrize("scale,declare", [(1.0, False), (255.0, False), (1.0, True)])
def test_float_tiles_follow_the_documented_grey_rule(tileset, tmp_path, scale, declare):
    """Issue 14: float tiles were all "blank" on a 0..1 scale and all "saturated" on 0..255.
    Rule: grey range from the manifest's intensity_range, else from the data; the result
    matches the same tiles ingested as uint8."""
    ref = ingest(tmp_path, "ref", tileset)
    ws = ingest(tmp_path, "ws", float_tileset(tileset, tmp_path / "in", scale, declare=declare))
    assert set(ws.read_table("tiles").to_pydict()["status"]) == {"ok"}
    a, b = np.asarray(ref.array("tiles")[:], int), np.asarray(ws.array("tiles")[:], int)
    assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.5


def test_each_section_keeps_its_own_tile_positions(tileset, tmp_path):
    """Issue 14, silent wrong result: only section 0's positions were used, so one bad
    position there misplaced that tile in every section. Now only section 0 is affected."""
    def change(m):
        m["sections"][0]["tiles"][1]["x"] = 0.0  # tile (0, 1) of section 0 claims x = 0

    d = with_manifest(tileset, tmp_path / "in", change)
    ws = Workspace.create(tmp_path / "ws")
    run_pipeline(ws, {"tile_dir": d}, until="stitch")
    pos = ws.read_table("tile_positions").to_pydict()
    rows = {(z, i): (nx, x) for z, i, nx, x in zip(pos["z"], pos["tile_index"],
                                                    pos["nominal_x"], pos["x"], strict=True)}
    assert rows[(0, 1)][0] == 0.0  # section 0 as its manifest says
    nominal_x, solved_x = rows[(1, 1)]
    assert nominal_x == 80.0 and abs(solved_x - 80.0) < 8.0  # section 1 as its own says


# --- workspace and command line --------------------------------------------------------
def test_workspace_path_that_is_a_file(tileset, tmp_path, capsys):
    """Issue 14, traceback: a workspace path that is a file raised FileExistsError."""
    f = tmp_path / "ws"
    f.write_text("not a directory")
    code, err = cli(["run", "-w", f, "--input", tileset, "--until", "ingest"], capsys)
    assert code == 1 and err.startswith("error:") and "is a file" in err
    assert f.read_text() == "not a directory"


@contextlib.contextmanager
def immutable(path: Path):
    """``path`` unwritable even for root (chattr +i), else by mode for another user."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("needs chattr +i to make a directory unwritable for root")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)


def test_read_only_volumes_zarr(tileset, tmp_path, capsys):
    """Issue 14, traceback: a read-only volumes.zarr gave a raw OSError (after the stage
    had run). Now the run stops before starting, with a line naming the directory."""
    ws_dir = tmp_path / "ws"
    assert cli(["run", "-w", ws_dir, "--input", tileset, "--until", "ingest"], capsys)[0] == 0
    ws = Workspace.open(ws_dir)
    with immutable(ws.zarr_path):
        code, err = cli(["run", "-w", ws_dir, "--until", "stitch"], capsys)
    assert code == 1 and err.startswith("error:") and "volumes.zarr" in err
    assert "not writable" in err and not ws.has_array("raw")
    assert cli(["run", "-w", ws_dir, "--until", "stitch"], capsys)[0] == 0  # then it runs


def test_bad_set_is_validated_before_anything_is_written(tileset, tmp_path, capsys):
    """Issue 14: a bad --set (blocks.block_shape=[0,0,0]) was written to cxgraph.toml (or a
    new workspace created) before it was validated. Now nothing is written."""
    new = tmp_path / "new"
    code, err = cli(["run", "-w", new, "--input", tileset,
                     "--set", "blocks.block_shape=[0,0,0]"], capsys)
    assert code == 1 and "blocks.block_shape" in err and not new.exists()
    ws = tmp_path / "ws"
    assert cli(["init", ws], capsys)[0] == 0
    before = (ws / "cxgraph.toml").read_text()
    for bad in ("blocks.block_shape=[0,0,0]", "ingest.flatfield_sigma_px=-1",
                "ingest.saturated_fraction_flag=2"):
        code, err = cli(["run", "-w", ws, "--input", tileset, "--set", bad], capsys)
        assert code == 1 and err.startswith("error:") and bad.split("=")[0] in err, err
    assert (ws / "cxgraph.toml").read_text() == before
    good = tomllib.loads(before)
    assert good["ingest"]["flatfield_sigma_px"] == 8.0


def test_cli_turns_os_errors_into_one_line(tmp_path, capsys, monkeypatch):
    """Issue 14: whatever the file system refuses (disk full, permissions) ends as one
    `error:` line naming the file, never a traceback."""
    import cxgraph.workspace as wsmod

    def full(*_a, **_k):
        raise OSError(28, "No space left on device", str(tmp_path / "ws" / "cxgraph.toml"))

    monkeypatch.setattr(wsmod, "atomic_write_bytes", full)
    code, err = cli(["init", tmp_path / "ws"], capsys)
    assert code == 1 and err.startswith("error:") and "No space left" in err

