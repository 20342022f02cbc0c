"""The stage contract, run against every registered stage (zarr's one-suite-per-backend idea).

Each test takes a copy of one small workspace in which every stage has run once
(``built``) and re-runs one stage under one condition:

- a no-op re-run does nothing and rewrites nothing;
- a parameter the stage does not read leaves its identity alone; one it reads re-runs it,
  and going back (A -> B -> A) gives A's bytes;
- a deleted output (array or table) is recomputed, byte-identical;
- a change in the stage's code re-runs it; a change in another stage's code does not;
- a failure part-way keeps the finished blocks and their quality; the resume skips them;
- serial and Dask give byte-identical outputs;
- a regional re-run rewrites the region's chunks and leaves every other one byte-identical.

``CHANGES`` names, per stage, a parameter change that changes its output; a new stage
must add one (``test_every_stage_is_covered``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from align_synth import write_tileset

from cxgraph.config import Config
from cxgraph.provenance import ProvenanceStore
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.engine import Roi, identity
from pipeline.engine.run import run_stage

CHANGES = {
    "ingest": ("ingest.target_high", 200.0),
    "stitch": ("stitch.blend_px", 4),
    "align": ("align.blend_px", 4),
    "smooth": ("smooth.sigma", [1.0, 2.0, 2.0]),
    "affinities": ("affinities.baseline_width", 0.5),
    "supervoxels": ("supervoxels.seed_distance_px", 3),
    "agglomerate": ("agglomerate.context", [1, 8, 8]),
    "segmentation": ("segmentation.min_body_voxels", 1000),  # some of block 0's bodies
    "synapse_prediction": ("synapse_prediction.baseline_darkness", 0.8),
    "synapses": ("synapses.threshold", 0.3),
    **{s.name: (f"{s.name}.method", "max") for s in registry.stages()
       if s.name.startswith("pyramid_")},
}
SMALL = ["blocks.block_shape=[2,96,96]", "blocks.chunk_shape=[2,96,96]",
         "align.pair_patch_px=48", "align.patch_px=64", "align.patch_stride_px=48",
         "affinities.method=baseline", "synapse_prediction.method=baseline",
         "synapses.min_voxels=100"]  # the baseline's small masks on this tiny volume
# (the networks' own tests are in test_segment.py and test_synapses.py)
STAGES = [s.name for s in registry.stages() if s.grid is not None]
# stages without blocks, and where their contract is tested
NOT_BLOCKWISE = {"graph": "tests/test_graph_stage.py", "refine": "tests/test_synapses.py"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A workspace where every registered stage has run once (4 sections, 2 x 2 tiles)."""
    root = tmp_path_factory.mktemp("contract")
    write_tileset(root / "in", n_sections=4, missing=(), seed=3)
    ws = Workspace.create(root / "ws", Config().with_overrides(SMALL))
    registry.run_pipeline(ws, {"tile_dir": root / "in"}, only=STAGES + ["refine"])
    return ws.root


def copy(built: Path, tmp_path: Path, *overrides: str) -> Workspace:
    shutil.copytree(built, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    if overrides:
        ws.set_config(ws.config.with_overrides(list(overrides)))
    return ws


def run(ws: Workspace, name: str, **kw):
    return registry.run_pipeline(ws, only=[name], **kw)[-1]


def files(ws: Workspace, stage_name: str) -> dict[str, bytes]:
    """Every file of the stage's outputs (chunks and tables), keyed ``<array>|<chunk path>``
    (level 0 of a volume: its pyramid levels belong to another stage), without the metadata
    files that carry stamps."""
    out = {}
    for a in registry.get(stage_name).outputs:
        if a.kind == "array":
            root = ws.array_path(a.name)
            for f in sorted(root.rglob("*")):
                if f.is_file() and f.name != "zarr.json":
                    out[f"{a.name}|{f.relative_to(root)}"] = f.read_bytes()
        elif a.kind == "table":
            # a stage_run column names the run that wrote the rows: the same data from
            # another run of the same identity carries that run's id
            t = ws.read_table(a.name).replace_schema_metadata(None)
            t = t.drop_columns([c for c in t.column_names if c == "stage_run"])
            out[f"tables/{a.name}"] = identity.table_hash(t).encode()
    return out


def block_count(ws: Workspace) -> int:
    return ProvenanceStore(ws.provenance_path).execute("SELECT count(*) FROM block_runs")[0][0]


def set_param(ws: Workspace, key: str, value) -> None:
    section, _, name = key.partition(".")
    params = ws.config[section]
    ws.set_config(ws.config.replace(section, params.replace(**{name: value})))


def test_every_stage_is_covered():
    assert set(CHANGES) == set(STAGES), "add the new stage to CHANGES"
    blockless = {s.name for s in registry.stages() if s.grid is None}
    assert blockless == set(NOT_BLOCKWISE), "say where the new stage's contract is tested"


@pytest.mark.parametrize("name", STAGES)
def test_no_op_rerun_does_nothing(built, tmp_path, name):
    ws = copy(built, tmp_path)
    before, blocks = files(ws, name), block_count(ws)
    res = run(ws, name)
    assert res.action == "reused" and res.blocks_run == 0
    assert block_count(ws) == blocks and files(ws, name) == before


@pytest.mark.parametrize("name", STAGES)
def test_unread_parameter_keeps_identity_read_one_reruns_and_back_gives_same_bytes(
        built, tmp_path, name):
    ws = copy(built, tmp_path)
    before = files(ws, name)
    other = next(s for s in STAGES if s != name)
    set_param(ws, *CHANGES[other])
    assert run(ws, name).action == "reused"
    key, value = CHANGES[name]
    section, _, param = key.partition(".")
    old = getattr(ws.config[section], param)
    set_param(ws, key, value)
    changed = run(ws, name)
    assert changed.action == "ran" and files(ws, name) != before
    set_param(ws, key, list(old) if isinstance(old, tuple) else old)
    back = run(ws, name)
    assert back.action == "ran" and files(ws, name) == before


@pytest.mark.parametrize("name", STAGES)
def test_deleted_output_is_recomputed(built, tmp_path, name):
    for a in registry.get(name).outputs:
        ws = copy(built, tmp_path / a.key.replace(":", "_"))
        before = files(ws, name)
        if a.kind == "array":
            shutil.rmtree(ws.zarr_path / a.name)
        else:
            ws.table_path(a.name).unlink()
        assert run(ws, name).action == "ran", a
        assert files(ws, name) == before, a


@pytest.mark.parametrize("name", STAGES)
def test_code_change_reruns_the_stage_and_only_it(built, tmp_path, name, monkeypatch):
    ws = copy(built, tmp_path)
    stage = registry.get(name)
    own = stage.process_block.__module__
    other = next(m for s in STAGES if s != name
                 for m in identity.code_modules(registry.get(s))
                 if m not in identity.code_modules(stage))
    real = identity._module_file

    def edited(module: str):
        def find(n: str):
            if n != module:
                return real(n)
            path = tmp_path / f"{n}.py"
            path.write_text(real(n).read_text() + "\n# an edit\n")
            return path
        return find

    monkeypatch.setattr(identity, "_module_file", edited(other))
    identity._closure.cache_clear()
    assert run(ws, name).action == "reused"
    monkeypatch.setattr(identity, "_module_file", edited(own))
    identity._closure.cache_clear()
    assert run(ws, name).action == "ran"
    identity._closure.cache_clear()


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("name", STAGES)
def test_failure_part_way_keeps_finished_blocks_and_their_quality(built, tmp_path, name):
    ws = copy(built, tmp_path, "executor.max_retries=0")
    key, value = CHANGES[name]
    set_param(ws, key, value)  # a new run of the stage
    stage = registry.get(name)
    flag = tmp_path / "fail"
    flag.write_text("")
    failing = dataclasses.replace(stage, process_block=_FailAfterFirst(stage.process_block, flag))
    with pytest.raises(Exception, match="block"):
        run_stage(ws, failing, sources=registry.recorded_sources(ws))
    store = ProvenanceStore(ws.provenance_path)
    (run_id,) = store.execute("SELECT stage_run_id FROM stage_runs WHERE stage = ? AND "
                              "status = 'failed'", [name])[0]
    done = dict(store.execute("SELECT block_id, finished_at FROM block_runs WHERE "
                              "stage_run_id = ? AND status = 'done'", [run_id]))
    quality = store.execute("SELECT block, metric, value FROM quality WHERE stage_run_id = ? "
                            "AND block IS NOT NULL ORDER BY ALL", [run_id])
    quality = [q for q in quality if q[0] in done]  # (align also has solve rows per block)
    assert len(done) == 1 and quality, "the finished block's quality rows were not kept"
    flag.unlink()
    res = run_stage(ws, failing, sources=registry.recorded_sources(ws))
    assert res.action == "resumed" and res.stage_run_id == run_id
    assert res.blocks_run == res.blocks - len(done)
    after = dict(store.execute("SELECT block_id, finished_at FROM block_runs WHERE "
                               "stage_run_id = ?", [run_id]))
    assert all(after[b] == t for b, t in done.items())  # finished blocks were not redone
    kept = store.execute("SELECT block, metric, value FROM quality WHERE stage_run_id = ? "
                         "AND block IS NOT NULL ORDER BY ALL", [run_id])
    assert set(quality) <= set(kept)
    attempts = store.execute("SELECT attempt, status FROM stage_attempts WHERE "
                             "stage_run_id = ? ORDER BY attempt", [run_id])
    assert attempts == [(1, "failed"), (2, "done")]
    ref = copy(built, tmp_path / "ref")
    set_param(ref, key, value)
    run(ref, name)
    assert files(ws, name) == files(ref, name)


class _FailAfterFirst:
    """process_block that raises on every block after the first while ``flag`` exists
    (serial executor: one process, in order)."""

    def __init__(self, fn, flag: Path):
        self.fn, self.flag, self.calls = fn, flag, 0

    @property
    def __module__(self):  # the code fingerprint follows the wrapped function
        return self.fn.__module__

    def __call__(self, ctx, block):
        self.calls += 1
        if self.flag.exists() and self.calls > 1:
            raise Boom(f"injected failure in block {block.block_id}")
        return self.fn(ctx, block)


@pytest.mark.parametrize("name", STAGES)
def test_dask_is_byte_identical_to_serial(built, tmp_path, name):
    key, value = CHANGES[name]
    serial = copy(built, tmp_path / "serial")
    dask_ws = copy(built, tmp_path / "dask", "executor.kind=dask", "executor.workers=2")
    for ws in (serial, dask_ws):
        set_param(ws, key, value)
        assert run(ws, name).action == "ran"
    assert files(serial, name) == files(dask_ws, name)


@pytest.mark.parametrize("name", STAGES)
def test_regional_rerun_leaves_every_chunk_outside_byte_identical(built, tmp_path, name):
    ws = copy(built, tmp_path)
    before = files(ws, name)
    key, value = CHANGES[name]
    set_param(ws, key, value)
    region = Roi((0, 0, 0), (1, 1, 1))  # meets the first block of any grid
    res = run(ws, name, region=region)
    assert res.action == "ran" and 0 < res.blocks < _full_blocks(built, name)
    after = files(ws, name)
    store = ProvenanceStore(ws.provenance_path)
    written = _chunks_written(store, res.stage_run_id)
    changed = {k for k in before if after.get(k) != before[k]}
    arrays = [a.name for a in registry.get(name).outputs if a.kind == "array"]
    for k in before:
        if k.startswith("tables/"):
            continue
        arr, chunk = _split_chunk(k, arrays)
        if chunk not in written.get(arr, set()):
            assert after[k] == before[k], f"{k} outside the region changed"
    if arrays:
        assert any(not k.startswith("tables/") for k in changed), "nothing changed in the region"
    else:
        assert changed, "no table changed"
    # the graph of runs: the regional run names the run whose outputs it patched
    base = store.execute("SELECT base_stage_run_id FROM stage_runs WHERE stage_run_id = ?",
                         [res.stage_run_id])[0][0]
    assert base and base.startswith(name)
    # and a whole-volume run with the same parameters gives the same bytes in the region
    full = copy(built, tmp_path / "full")
    set_param(full, key, value)
    run(full, name)
    ref = files(full, name)
    for k in changed:
        if not k.startswith("tables/"):
            assert after[k] == ref[k], k
    # per-block tables: the region's blocks' rows equal the whole run's
    redone = pa.array([int(b) for b in written_blocks(store, res.stage_run_id)], pa.int64())
    for a in registry.get(name).outputs:
        t = ws.read_table(a.name) if a.kind == "table" else None
        if t is not None and identity.read_stamp(ws, a).get("per_block"):
            mine, theirs = (x.filter(pc.is_in(x["block"], redone)).drop_columns(
                [c for c in x.column_names if c == "stage_run"]).replace_schema_metadata(None)
                for x in (t, full.read_table(a.name)))
            assert identity.table_hash(mine) == identity.table_hash(theirs), a


def _full_blocks(built: Path, name: str) -> int:
    store = ProvenanceStore(Path(built) / "provenance.duckdb")
    return store.execute("SELECT count(*) FROM block_runs b JOIN stage_runs s USING "
                         "(stage_run_id) WHERE s.stage = ?", [name])[0][0]


def written_blocks(store: ProvenanceStore, run_id: str) -> list[int]:
    return [r[0] for r in store.execute("SELECT block_id FROM block_runs WHERE "
                                        "stage_run_id = ?", [run_id])]


def _chunks_written(store: ProvenanceStore, run_id: str) -> dict[str, set[str]]:
    import json

    out: dict[str, set[str]] = {}
    for (text,) in store.execute("SELECT output_hashes_json FROM block_runs WHERE "
                                 "stage_run_id = ?", [run_id]):
        for arr, chunks in json.loads(text or "{}").items():
            out.setdefault(arr, set()).update(chunks)
    return out


def _split_chunk(key: str, arrays: list[str]) -> tuple[str, str]:
    """``<array>|c/0/1/2`` -> (array, "0.1.2")."""
    name, _, rel = key.partition("|")
    assert name in arrays
    return name, ".".join(Path(rel).parts[1:])


def test_block_hashes_are_content_hashes(built):
    """The chunk hashes in the ledger are sha256 of the chunks' data as stored."""
    ws = Workspace.open(built)
    store = ProvenanceStore(ws.provenance_path)
    (text,) = store.execute("SELECT output_hashes_json FROM block_runs b JOIN stage_runs s "
                            "USING (stage_run_id) WHERE s.stage = 'align' LIMIT 1")[0]
    arr = ws.array("aligned")
    for key, sha in __import__("json").loads(text)["aligned"].items():
        idx = [int(i) for i in key.split(".")]
        sl = tuple(slice(i * c, min(s, (i + 1) * c)) for i, c, s in
                   zip(idx, arr.chunks, arr.shape, strict=True))
        assert hashlib.sha256(np.ascontiguousarray(arr[sl]).tobytes()).hexdigest() == sha
