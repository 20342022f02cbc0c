"""Reliability benchmark (issue 14): bad inputs, crash points, load, and a GraphQL fuzz,
measured side by side in one run.

    nice -n 10 python benchmarks/bench_reliability.py --workdir /tmp/cxgraph-bench-rel

1. **Bad inputs**: a catalogue of bad pipeline inputs (manifests, tiles, workspaces,
   ``--set``) through the real command line (``cxgraph.cli.main``) and bad API requests
   through the real ASGI app on the real Neo4j. Each is classified: ``clear`` (one
   ``error:`` line, or a 4xx with a message), ``handled`` (a documented, checked
   handling: e.g. a NaN tile marked ``non_finite`` while the rest is ingested),
   ``traceback`` (an exception or a 5xx) or ``silent`` (exit 0 / 200 with a wrong result).
2. **Crash points**: ``cxgraph run`` killed (SIGKILL) at spread-out moments of a run,
   then resumed; blocks lost = z-chunks of ``tiles``/``raw``/``aligned`` that differ from
   a clean run, plus table rows missing. And a Bolt connection cut in the middle of a
   graph load, then the load re-run: nodes/relationships vs a clean load.
3. **Load**: ``cxgraph serve`` (uvicorn) on a synthetic graph; ``--clients`` concurrent
   clients, each with its own token, send a GraphQL + Cypher mix for ``--seconds``:
   errors, p50/p99. **Starvation**: the p99 of a trivial GraphQL query on an idle server
   and while one token runs slow Cypher (``HOGS``: CPU-bound, ``apoc.util.sleep``, large
   results) from 8 concurrent loops, on servers one after another: ``before`` (the tree
   ``--before-src``), ``old_settings`` (this code, the old per-token Cypher cap and pool)
   and ``after`` (this code, defaults).
4. **Fuzz**: hypothesis-graphql queries and mutations generated from the API's own SDL
   (``cxgraph.api.schema.sdl``), sent to the server: requests, server errors (5xx,
   ``INTERNAL``, a dropped connection) and, apart, client timeouts.

``--phases`` runs a subset. Each phase's figures are written to the JSON as soon as it
ends; a phase that fails is recorded (``failed_phases``, its error) and the run goes on.
Prints JSON and writes WORKDIR/bench_reliability.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import multiprocessing
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from align_synth import write_tileset  # noqa: E402
from bench_api import free_port, pct, start_server  # noqa: E402
from bench_graph_load import generate  # noqa: E402

from cxgraph.api.auth import TokenStore  # noqa: E402
from cxgraph.config import Config  # noqa: E402
from cxgraph.graph.loader import load_snapshot  # noqa: E402
from cxgraph.graph.store import GraphStore  # noqa: E402
from cxgraph.neo4j_server import external_connection, managed_server  # noqa: E402
from cxgraph.workspace import Workspace  # noqa: E402
from pipeline.ingest.manifest import read_tile, write_tile  # noqa: E402

log = logging.getLogger("bench_reliability")
BLOCKS = ["--set", "blocks.block_shape=[2,128,128]", "--set", "blocks.chunk_shape=[2,128,128]",
          "--set", "align.pair_patch_px=48", "--set", "align.patch_px=64",
          "--set", "align.patch_stride_px=48"]
FUZZ_TIMEOUT_S = 60.0  # client timeout of one fuzz request (the API's own limit is per call)


# --- 1. bad inputs -------------------------------------------------------------------------------
def cli(args: list) -> tuple[int, str, str | None]:
    """(exit code, stderr, escaped exception) of ``cxgraph ARGS`` in this process."""
    from cxgraph import cli as cli_mod

    argv, err = sys.argv, io.StringIO()
    sys.argv = ["cxgraph", *map(str, args)]
    code, exc = 0, None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli_mod.main()
    except SystemExit as e:
        code = int(e.code or 0)
    except BaseException as e:  # noqa: BLE001 - a traceback is what we count
        exc = f"{type(e).__name__}: {e}"[:300]
    finally:
        sys.argv = argv
    return code, err.getvalue(), exc


def manifest_cases() -> list[tuple[str, object]]:
    def t0(m):
        return m["sections"][0]["tiles"][0]

    return [
        ("shape as a string", lambda m: m.update(shape="16,256,256")),
        ("shape with a word", lambda m: m.update(shape=[4, "a", 176])),
        ("shape [4,0,0]", lambda m: m.update(shape=[4, 0, 0])),
        ("negative Y size", lambda m: m.update(shape=[4, -176, 176])),
        ("shape of two numbers", lambda m: m.update(shape=[4, 176])),
        ("sections an object", lambda m: m.update(sections={"0": {}})),
        ("sections missing", lambda m: m.pop("sections")),
        ("manifest a JSON array", lambda m: [m]),
        ("manifest not JSON", "not json {"),
        ("format missing", lambda m: m.pop("format")),
        ("format unknown", lambda m: m.update(format="cxgraph-tiles/9")),
        ("dtype unknown", lambda m: m.update(dtype="complex64")),
        ("dtype a number", lambda m: m.update(dtype=8)),
        ("voxel_size zero", lambda m: m.update(voxel_size=[40, 0, 8])),
        ("voxel_size NaN", lambda m: m.update(voxel_size=[40, float("nan"), 8])),
        ("tile_shape negative", lambda m: m.update(tile_shape=[-96, 96])),
        ("tile y null", lambda m: t0(m).update(y=None)),
        ("tile y NaN", lambda m: t0(m).update(y=float("nan"))),
        ("tile x 1e12", lambda m: t0(m).update(x=1e12)),
        ("tile x infinite", lambda m: t0(m).update(x=float("inf"))),
        ("tile row -1", lambda m: t0(m).update(row=-1)),
        ("tile row 10^7", lambda m: t0(m).update(row=10**7)),
        ("tile col 10^7", lambda m: t0(m).update(col=10**7)),
        ("tile row a float", lambda m: t0(m).update(row=0.5)),
        ("tile row a bool", lambda m: t0(m).update(row=True)),
        ("tile file missing key", lambda m: t0(m).pop("file")),
        ("tile file /etc/hostname", lambda m: t0(m).update(file="/etc/hostname")),
        ("tile file ../", lambda m: t0(m).update(file="../../../etc/hostname")),
        ("tile file empty", lambda m: t0(m).update(file="")),
        ("two tiles one position", lambda m: m["sections"][0]["tiles"][1].update(row=0, col=0)),
        ("section z out of range", lambda m: m["sections"][1].update(z=99)),
        ("section z repeated", lambda m: m["sections"][1].update(z=0)),
        ("section z negative", lambda m: m["sections"][1].update(z=-1)),
        ("section status unknown", lambda m: m["sections"][1].update(status="lost")),
        ("intensity_range reversed", lambda m: m.update(intensity_range=[1, 0])),
        ("shape 10^9 sections", lambda m: m.update(shape=[10**9, 176, 176])),
        ("section 10^7 x 10^7 px", lambda m: m.update(shape=[4, 10**7, 10**7])),
        ("tiles 10^6 x 10^6 px", lambda m: m.update(tile_shape=[10**6, 10**6])),
    ]


def with_manifest(src: Path, dst: Path, change) -> Path:
    shutil.copytree(src, dst)
    if isinstance(change, str):
        (dst / "manifest.json").write_text(change)
        return dst
    if change is None:
        return dst
    data = json.loads((dst / "manifest.json").read_text())
    out = change(data)
    (dst / "manifest.json").write_text(json.dumps(data if out is None else out))
    return dst


def float_tiles(src: Path, dst: Path, scale: float, nan_file: str | None = None) -> Path:
    shutil.copytree(src, dst)
    data = json.loads((dst / "manifest.json").read_text())
    for s in data["sections"]:
        for t in s["tiles"]:
            img = read_tile(dst / t["file"]).astype(np.float32) / 255.0 * scale
            if t["file"] == nan_file:
                img[::5, ::7] = np.nan
            write_tile(dst / t["file"], img)
    data["dtype"] = "float32"
    (dst / "manifest.json").write_text(json.dumps(data))
    return dst


def classify_cli(args, expect_error: bool, check=None) -> tuple[str, str]:
    code, err, exc = cli(args)
    if exc or "Traceback" in err:
        return "traceback", exc or err[-300:]
    if expect_error:
        if code == 1 and err.strip().startswith("error:"):
            return "clear", err.strip().splitlines()[0][:200]
        return ("silent" if code == 0 else "traceback"), err[-200:]
    if code != 0:
        return ("clear" if err.strip().startswith("error:") else "traceback"), err[-200:]
    ok, note = check()
    return ("handled" if ok else "silent"), note


def bad_pipeline_inputs(work: Path, good: Path) -> list[dict]:
    out = []

    def record(name, outcome_note):
        outcome, note = outcome_note
        out.append({"case": name, "outcome": outcome, "note": note})
        log.info("bad input %-34s %s", name, outcome)

    for i, (name, change) in enumerate(manifest_cases()):
        d = with_manifest(good, work / f"m{i}", change)
        ws = work / f"ws_m{i}"
        res = classify_cli(["run", "-w", ws, "--input", d, "--until", "ingest"], True)
        if res[0] == "clear" and Workspace.open(ws).has_array("tiles"):
            res = ("silent", "error, but a tiles array was written")
        record(f"manifest: {name}", res)

    def tiles_check(ws: Path, want: dict[str, str]):
        def check():
            t = Workspace.open(ws).read_table("tiles").to_pydict()
            status = dict(zip(t["file"], t["status"], strict=True))
            a = Workspace.open(ws).array("tiles")
            finite = np.isfinite(list(a.attrs["intensity_map"].values())[:2]).all()
            bad = {f: s for f, s in status.items() if s != "ok"}
            used = np.asarray(a[:]).reshape(a.shape[0] * a.shape[1], -1).std(axis=1)
            return bad == want and finite and (used > 5).sum() >= len(status) - len(want), \
                f"bad tiles {bad}"
        return check

    nan_file = "tiles/z0001_r01_c00.tif"
    for name, make, want in [
        ("one NaN tile (float32)", lambda d: float_tiles(good, d, 1.0, nan_file),
         {nan_file: "non_finite"}),
        ("float tiles 0..1", lambda d: float_tiles(good, d, 1.0), {}),
        ("float tiles 0..255", lambda d: float_tiles(good, d, 255.0), {}),
    ]:
        d, ws = make(work / f"t_{len(out)}"), work / f"ws_t_{len(out)}"
        record(f"tiles: {name}",
               classify_cli(["run", "-w", ws, "--input", d, "--until", "ingest"], False,
                            tiles_check(ws, want)))
    d = with_manifest(good, work / "corrupt", None)
    (d / "tiles/z0002_r00_c01.tif").write_bytes(b"garbage")
    ws = work / "ws_corrupt"
    record("tiles: a corrupt file", classify_cli(
        ["run", "-w", ws, "--input", d, "--until", "ingest"], False,
        tiles_check(ws, {"tiles/z0002_r00_c01.tif": "corrupt"})))
    d = with_manifest(good, work / "absent", None)
    (d / "tiles/z0002_r01_c01.tif").unlink()
    ws = work / "ws_absent"
    record("tiles: a file missing", classify_cli(
        ["run", "-w", ws, "--input", d, "--until", "ingest"], False,
        tiles_check(ws, {"tiles/z0002_r01_c01.tif": "corrupt"})))
    d = with_manifest(good, work / "shape", None)
    write_tile(d / "tiles/z0003_r00_c00.tif", np.full((40, 40), 100, np.uint8))
    ws = work / "ws_shape"
    record("tiles: wrong shape", classify_cli(
        ["run", "-w", ws, "--input", d, "--until", "ingest"], False,
        tiles_check(ws, {"tiles/z0003_r00_c00.tif": "wrong_shape"})))

    def one_section_position():
        d = with_manifest(good, work / "pos", lambda m: m["sections"][0]["tiles"][1].update(
            x=0.0))
        ws = work / "ws_pos"

        def check():
            p = Workspace.open(ws).read_table("tile_positions").to_pydict()
            other = [abs(x - 80.0) for z, i, x in zip(p["z"], p["tile_index"], p["x"],
                                                      strict=True) if z > 0 and i == 1]
            return max(other) < 8.0, f"tile 1 in sections 1+: max |x - 80| {max(other):.1f}"
        return classify_cli(["run", "-w", ws, "--input", d, "--until", "stitch"], False, check)

    record("tiles: one bad position in section 0", one_section_position())
    f = work / "a_file"
    f.write_text("x")
    record("workspace: path is a file",
           classify_cli(["run", "-w", f, "--input", good, "--until", "ingest"], True))
    record("input: directory missing",
           classify_cli(["run", "-w", work / "ws_in", "--input", work / "nope"], True))
    (work / "empty_in").mkdir()
    record("input: no manifest.json",
           classify_cli(["run", "-w", work / "ws_in2", "--input", work / "empty_in"], True))
    for s in ("blocks.block_shape=[0,0,0]", "blocks.block_shape=[1,2]",
              "ingest.flatfield_sigma_px=-1", "ingest.saturated_fraction_flag=2",
              "ingest.on_bad_tile=ignore", "nosuch.param=1", "ingest.blank_std=abc"):
        ws = work / f"ws_set_{len(out)}"
        res = classify_cli(["run", "-w", ws, "--input", good, "--set", s], True)
        if res[0] == "clear" and ws.exists():
            res = ("silent", "error, but the workspace was created")
        record(f"--set {s}", res)
    ro = work / "ws_ro"
    cli(["run", "-w", ro, "--input", good, "--until", "ingest"])
    if os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(ro / "volumes.zarr")], check=True)
        try:
            record("workspace: volumes.zarr read-only",
                   classify_cli(["run", "-w", ro, "--until", "stitch"], True))
        finally:
            subprocess.run(["chattr", "-i", str(ro / "volumes.zarr")], check=True)
    return out


def bad_api_requests(ws: Workspace, store: GraphStore) -> list[dict]:
    """Bad and hostile requests through the ASGI app (real Neo4j)."""
    from cxgraph.api import create_app
    from cxgraph.api.params import ApiParams

    tokens = TokenStore.for_workspace(ws.root)
    read, _ = tokens.create("rel-read", "read")
    write, _ = tokens.create("rel-write", "write")
    app = create_app(ws, store=store, params=ApiParams(max_response_bytes=4 << 20))
    body_id = store.read("MATCH (n:Segment) RETURN n.bodyId LIMIT 1").rows[0][0]
    ann = (f'mutation($t: String) {{ annotateNeuron(bodyId: "{body_id}", type: $t) '
           "{ __typename } }")
    cases = [
        ("cypher LOAD CSV to a URL", "/cypher", read,
         {"query": "LOAD CSV FROM 'http://127.0.0.1:9/x?d=' + apoc.text.join(['a'], '-') "
                   "AS r RETURN r"}),
        ("cypher LOAD CSV of a file", "/cypher", read,
         {"query": "LOAD CSV FROM 'file:///etc/hostname' AS r RETURN r"}),
        ("cypher apoc.load.json", "/cypher", read,
         {"query": "CALL apoc.load.json('http://127.0.0.1:9/') YIELD value RETURN value"}),
        ("cypher apoc.import.json", "/cypher", read,
         {"query": "CALL apoc.import.json('http://127.0.0.1:9/import.json')"}),
        ("cypher apoc.cypher.run", "/cypher", read,
         {"query": "CALL apoc.cypher.run('MATCH (n) DETACH DELETE n', {}) YIELD value "
                   "RETURN value"}),
        ("cypher SHOW TRANSACTIONS", "/cypher", read, {"query": "SHOW TRANSACTIONS"}),
        ("cypher TERMINATE TRANSACTIONS", "/cypher", read,
         {"query": "TERMINATE TRANSACTIONS 'neo4j-transaction-1'"}),
        ("cypher SHOW SETTINGS", "/cypher", read, {"query": "SHOW SETTINGS"}),
        ("cypher a write", "/cypher", read, {"query": "CREATE (n:X) RETURN n"}),
        ("cypher a schema change", "/cypher", read,
         {"query": "CREATE INDEX x IF NOT EXISTS FOR (n:X) ON (n.y)"}),
        ("cypher timeoutS 'abc'", "/cypher", read, {"query": "RETURN 1", "timeoutS": "abc"}),
        ("cypher timeoutS -1", "/cypher", read, {"query": "RETURN 1", "timeoutS": -1}),
        ("cypher 268 MB result", "/cypher", read,
         {"query": "RETURN reduce(s = 'x', i IN range(1, 28) | s + s) AS big"}),
        ("cypher syntax error", "/cypher", read, {"query": "MATC (n) RETURN n"}),
        ("cypher params not an object", "/cypher", read, {"query": "RETURN 1", "params": [1]}),
        ("cypher no query", "/cypher", read, {"params": {}}),
        ("graphql 100 operations, no name", "/graphql", read,
         {"query": " ".join(f"query q{i} {{ regions {{ name }} }}" for i in range(100))}),
        ("graphql variables a list", "/graphql", read, {"query": "{ regions { name } }",
                                                        "variables": [1]}),
        ("graphql operationName a number", "/graphql", read,
         {"query": "{ regions { name } }", "operationName": 5}),
        ("graphql bad id", "/graphql", read, {"query": '{ neuron(bodyId: "12x") { bodyId } }'}),
        ("graphql first: -1", "/graphql", read, {"query": "{ neurons(first: -1) { items { "
                                                          "bodyId } } }"}),
        ("annotate NUL byte", "/graphql", write, {"query": ann, "variables": {"t": "KC\x00"}}),
        ("annotate 500 KB", "/graphql", write, {"query": ann, "variables": {"t": "x" * 500_000}}),
        ("annotate with read token", "/graphql", read, {"query": ann, "variables": {"t": "KC"}}),
        ("no token", "/graphql", "", {"query": "{ regions { name } }"}),
        ("unknown token", "/graphql", "cxg_00000000_nope", {"query": "{ regions { name } }"}),
    ]

    async def run_all():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app,
                                                                   raise_app_exceptions=False),
                                     base_url="http://cxgraph.test", timeout=120) as c:
            res = []
            for name, path, tok, body in cases:
                headers = {"Authorization": f"Bearer {tok}"} if tok else {}
                try:
                    r = await c.post(path, json=body, headers=headers)
                    res.append((name, r.status_code, r.text[:300]))
                except Exception as e:  # noqa: BLE001
                    res.append((name, 599, f"{type(e).__name__}: {e}"))
            return res

    out = []
    try:
        for name, status, text in asyncio.run(run_all()):
            if status >= 500 or '"INTERNAL"' in text:
                outcome = "traceback"
            elif 400 <= status < 500 or '"errors"' in text:
                outcome = "clear"
            else:
                outcome = "silent"
            out.append({"case": f"api: {name}", "outcome": outcome, "note": f"{status} "
                        f"{text[:160]}"})
            log.info("bad input %-34s %s (%d)", name, outcome, status)
    finally:
        app.graph.close()
    return out


# --- 2. crash points -----------------------------------------------------------------------------
def _run(ws: Path, tiles: Path, kill_after: float | None = None) -> float:
    cmd = [sys.executable, "-m", "cxgraph", "run", "-w", str(ws), "--input", str(tiles),
           "--until", "align", *BLOCKS]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    if kill_after is None:
        if proc.wait() != 0:
            raise RuntimeError(f"{cmd} failed")
    else:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    return time.perf_counter() - t0


def _chunks_differing(a: Workspace, b: Workspace) -> int:
    lost = 0
    for name in ("tiles", "raw", "aligned"):
        x, y = np.asarray(a.array(name)[:]), np.asarray(b.array(name)[:])
        if x.shape != y.shape:
            lost += x.shape[0]
            continue
        step = 2  # the z-chunk (= block) depth of this run
        lost += sum(not np.array_equal(x[z:z + step], y[z:z + step])
                    for z in range(0, x.shape[0], step))
    for t in ("tiles", "tile_positions", "section_transforms"):
        lost += abs(a.read_table(t).num_rows - b.read_table(t).num_rows)
    return lost


def crash_points(work: Path, tiles: Path, n: int) -> dict:
    ref = work / "crash_ref"
    wall = _run(ref, tiles)
    out = {"run_wall_s": round(wall, 1), "points": []}
    for k in range(n):
        ws = work / f"crash_{k}"
        at = wall * (0.2 + 0.7 * k / max(n - 1, 1))
        _run(ws, tiles, kill_after=at)
        _run(ws, tiles)
        lost = _chunks_differing(Workspace.open(ref), Workspace.open(ws))
        out["points"].append({"killed_at_s": round(at, 1), "blocks_lost": lost})
        log.info("crash at %.1f s: %d blocks lost", at, lost)
    out["tried"] = n
    out["blocks_lost"] = sum(p["blocks_lost"] for p in out["points"])
    return out


def load_cut(store: GraphStore, conn, n_cuts: int) -> dict:
    """Cut the Bolt connection mid-load (as if Neo4j died), re-run the load: the graph must
    equal a clean load."""
    from bolt_proxy import BoltProxy

    from cxgraph.errors import CxgraphError
    from cxgraph.neo4j_server import Connection

    snap = generate(300, 6000)

    def counts():
        return (store.read("MATCH (n) RETURN count(n)").rows[0][0],
                store.read("MATCH ()-[r]->() RETURN count(r)").rows[0][0])

    store.clear()
    load_snapshot(store, snap)
    clean = counts()
    res = []
    for k in range(n_cuts):
        store.clear()
        proxy = BoltProxy(conn.uri)
        cut = GraphStore(Connection(f"bolt://127.0.0.1:{proxy.port}", conn.user,
                                    conn.password), batch_size=500, retry_s=3.0)
        proxy.cut_after = proxy.sent + 100_000 * (k + 1)
        t0 = time.perf_counter()
        try:
            load_snapshot(cut, snap)
            err = "load finished before the cut"
        except CxgraphError as e:
            err = str(e).splitlines()[0][:120]
        except Exception as e:  # noqa: BLE001
            err = f"TRACEBACK {type(e).__name__}"
        dt = time.perf_counter() - t0
        cut.close()
        load_snapshot(store, snap)
        res.append({"error": err, "seconds_to_error": round(dt, 1),
                    "duplicates_or_missing": abs(counts()[0] - clean[0])
                    + abs(counts()[1] - clean[1])})
    return {"tried": n_cuts, "cuts": res,
            "blocks_lost": sum(r["duplicates_or_missing"] for r in res)}


# --- 3. load -------------------------------------------------------------------------------------
async def mixed_load(base: str, tokens: list[str], ids: list[int], seconds: float,
                     warmup: bool = False) -> dict:
    lat: dict[str, list[float]] = {"graphql": [], "cypher": []}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def client(tok: str, seed: int):
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {tok}"}) as c:
            while time.monotonic() < deadline:
                i = rng.choice(ids)
                if rng.random() < 0.7:
                    kind = "graphql"
                    q = ('query($id: Id64!) { neuron(bodyId: $id) { bodyId type pre post } '
                         'partners(bodyId: $id, first: 10) { weight neuron { bodyId } } }')
                    req = c.post("/graphql", json={"query": q, "variables": {"id": str(i)}})
                else:
                    kind = "cypher"
                    req = c.post("/cypher", json={
                        "query": "MATCH (n:Segment {bodyId: $id})-[e:ConnectsTo]->(m) "
                                 "RETURN m.bodyId AS partner, e.weight AS w ORDER BY w DESC "
                                 "LIMIT 10", "params": {"id": i}})
                t0 = time.perf_counter()
                try:
                    r = await req
                    ok = r.status_code == 200 and '"errors"' not in r.text
                except httpx.HTTPError as e:
                    ok, r = False, e
                lat[kind].append(time.perf_counter() - t0)
                if not ok:
                    errors.append(f"{kind}: {getattr(r, 'status_code', r)}")

    await asyncio.gather(*[client(t, k) for k, t in enumerate(tokens)])
    if warmup:
        return {}
    n = sum(len(v) for v in lat.values())
    return {"clients": len(tokens), "seconds": seconds, "requests": n, "errors": len(errors),
            "error_sample": errors[:5], "throughput_rps": round(n / seconds, 1),
            "graphql": pct(lat["graphql"]), "cypher": pct(lat["cypher"])}


async def trivial_p99(base: str, tok: str, body_id: int, seconds: float) -> dict:
    """Latency of a trivial GraphQL query, one at a time; a failed one is counted (and its
    latency kept: a starved query is what this measures)."""
    out, failed = [], []
    q = {"query": f'{{ neuron(bodyId: "{body_id}") {{ bodyId type }} }}'}
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {tok}"}) as c:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                r = await c.post("/graphql", json=q)
                if r.status_code != 200 or '"errors"' in r.text:
                    failed.append(f"{r.status_code} {r.text[:120]}")
            except httpx.HTTPError as e:
                failed.append(f"{type(e).__name__}: {e}"[:120])
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)
    return {**pct(out), "failed": len(failed), "failed_sample": failed[:3]}


async def with_hog(base: str, tok: str, hog: str, body_id: int, seconds: float,
                   query: str) -> dict:
    """``trivial_p99`` while the token ``hog`` sends ``query`` from 8 loops in a process of
    its own (so that reading the hog's answers does not slow this process's client)."""
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_hog_process, args=(base, hog, query, stop, ready, out))
    proc.start()
    try:
        if not await asyncio.to_thread(ready.wait, 120):
            raise RuntimeError("the hog process did not start within 120 s")
        await asyncio.sleep(1.0)
        res = await trivial_p99(base, tok, body_id, seconds)
    finally:
        stop.set()
    counts = await asyncio.to_thread(out.get, True, 120)
    proc.join(timeout=30)
    return {**res, "hog": counts}


def _hog_process(base: str, hog: str, query: str, stop, ready, out) -> None:
    out.put(asyncio.run(_hog_loops(base, hog, query, stop, ready)))


async def _hog_loops(base: str, hog: str, query: str, stop, ready) -> dict:
    counts = {"ran": 0, "limited": 0, "failed": 0}

    async def loop():
        async with httpx.AsyncClient(base_url=base, timeout=60,
                                     headers={"Authorization": f"Bearer {hog}"}) as c:
            while not stop.is_set():
                try:
                    r = await c.post("/cypher", json={"query": query, "timeoutS": 10})
                except httpx.HTTPError:
                    counts["failed"] += 1
                    continue
                if r.status_code == 429:
                    counts["limited"] += 1
                    await asyncio.sleep(0.2)
                else:
                    counts["ran" if r.status_code == 200 else "failed"] += 1

    loops = [asyncio.ensure_future(loop()) for _ in range(8)]
    ready.set()
    await asyncio.gather(*loops)
    return counts


# --- 4. fuzz -------------------------------------------------------------------------------------
def fuzz(base: str, read: str, write: str, examples: int) -> dict:
    """hypothesis-graphql documents from the API's SDL, sent over HTTP. A server error is a
    5xx, an ``INTERNAL`` error or a dropped connection; a client timeout (the server busy
    past ``FUZZ_TIMEOUT_S``, e.g. under load) is counted apart, with the query, and never
    fails the run."""
    import graphql
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis_graphql import strategies as gql_st

    from cxgraph.api.schema import sdl

    schema = sdl()
    ids = st.one_of(st.integers(0, 2**64 + 5), st.sampled_from([0, 1, 9007199254740993]))
    scalars = {
        "Id64": ids.map(lambda v: graphql.StringValueNode(value=str(v))),
        "Long": st.integers(-(2**63), 2**63).map(lambda v: graphql.IntValueNode(value=str(v))),
        "JSON": st.text(max_size=20).map(lambda v: graphql.StringValueNode(value=v)),
    }
    stats: dict = {"requests": 0, "server_errors": 0, "client_timeouts": 0, "status": {},
                   "samples": [], "timeout_samples": []}
    client = httpx.Client(base_url=base, timeout=FUZZ_TIMEOUT_S)

    def send(doc: str, tok: str) -> None:
        stats["requests"] += 1
        try:
            r = client.post("/graphql", json={"query": doc},
                            headers={"Authorization": f"Bearer {tok}"})
        except httpx.TimeoutException:
            stats["client_timeouts"] += 1
            if len(stats["timeout_samples"]) < 5:
                stats["timeout_samples"].append(doc[:400])
            return
        except httpx.TransportError as e:  # connection refused or dropped: a server fault
            status, text = "connection", f"{type(e).__name__}: {e}"
        else:
            status, text = str(r.status_code), r.text
        stats["status"][status] = stats["status"].get(status, 0) + 1
        if status == "connection" or int(status) >= 500 or '"INTERNAL"' in text:
            stats["server_errors"] += 1
            if len(stats["samples"]) < 5:
                stats["samples"].append({"query": doc[:400], "response": text[:400]})

    opts = settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

    @opts
    @given(gql_st.queries(schema, custom_scalars=scalars))
    def queries(doc):
        send(doc, read)

    @opts
    @given(gql_st.mutations(schema, custom_scalars=scalars))
    def mutations(doc):
        send(doc, write)

    t0 = time.perf_counter()
    try:
        queries()
        mutations()
    except Exception as e:  # noqa: BLE001 - hypothesis itself failed: say so, keep the counts
        stats["error"] = f"{type(e).__name__}: {e}"[:500]
    client.close()
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    return stats


# --- main ----------------------------------------------------------------------------------------
PHASES = ("bad_inputs", "crash_points", "load", "starvation", "fuzz")
# the per-token Cypher cap and analyst pool before the fix of the starvation (3.09x)
OLD_SETTINGS = ["api.cypher_inflight_per_token=2", "api.cypher_db_threads=4"]
# ``old_settings`` also had the analyst workers at nice 5 (the setting came later)
OLD_SETTINGS_HERE = [*OLD_SETTINGS, "api.cypher_worker_nice=5"]
# parameters added after the ``--before-src`` tree: its Config refuses keys it does not know
NEWER_KEYS = {"neo4j": ("retry_s",), "api": ("cypher_worker_nice",)}
# one token's slow Cypher: CPU in Neo4j, a wait, and large results (decoded and encoded by
# the API process)
HOGS = {"cpu_heavy": "UNWIND range(1, 30000000) AS i RETURN sum(i) AS s",
        "sleeping": "CALL apoc.util.sleep(4000)",
        "large_results": "UNWIND range(1, 50000) AS i RETURN i, 'row ' + toString(i) AS s"}


def _drop_newer_keys(path: Path) -> None:
    import tomllib

    import tomli_w

    data = tomllib.loads(path.read_text())
    for section, keys in NEWER_KEYS.items():
        for key in keys:
            data.get(section, {}).pop(key, None)
    path.write_text(tomli_w.dumps(data))


def starvation(ws: Workspace, trivial: str, hog: str, body_id: int, seconds: float,
               before_src: Path | None) -> dict:
    """p99 of a trivial query, idle and while one token runs each kind of slow Cypher
    (``HOGS``) from 8 loops, on one server after another (so the ratios share the
    machine): ``before`` (the source tree ``before_src`` with its settings, if given),
    ``old_settings`` (this code with ``OLD_SETTINGS``) and ``after`` (this code, defaults)."""
    servers = [("old_settings", None, OLD_SETTINGS_HERE), ("after", None, [])]
    if before_src is not None:
        servers.insert(0, ("before", before_src, OLD_SETTINGS))
    base_config = ws.config
    out: dict = {}
    try:
        for name, src, overrides in servers:
            ws.set_config(base_config.with_overrides(overrides))
            if src is not None:
                _drop_newer_keys(ws.root / "cxgraph.toml")
            port = free_port()
            server = start_server(ws, port, src)
            url = f"http://127.0.0.1:{port}"
            try:
                asyncio.run(trivial_p99(url, trivial, body_id, 2.0))  # warm-up
                idle = asyncio.run(trivial_p99(url, trivial, body_id, seconds))
                hogs = {kind: asyncio.run(with_hog(url, trivial, hog, body_id, seconds, q))
                        for kind, q in HOGS.items()}
            finally:
                server.terminate()
                server.wait(timeout=30)
            ratios = {kind: round(h["p99_ms"] / idle["p99_ms"], 2) for kind, h in hogs.items()}
            out[name] = {"source": str(src or ROOT), "settings": overrides or "defaults",
                         "idle": idle, "hogs": hogs, "p99_ratio": ratios,
                         "load_average_1m": round(os.getloadavg()[0], 1)}
            log.info("starvation %s: idle p99 %.1f ms, p99 ratios %s", name, idle["p99_ms"],
                     ratios)
    finally:
        ws.set_config(base_config)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cxgraph-bench-rel"))
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"comma-separated subset of {','.join(PHASES)}")
    ap.add_argument("--crash-points", type=int, default=5)
    ap.add_argument("--load-cuts", type=int, default=2)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--starvation-seconds", type=float, default=15.0)
    ap.add_argument("--before-src", type=Path, default=None,
                    help="a source tree of cxgraph before the starvation fix (e.g. `git "
                         "archive da6a4c3 | tar -x -C DIR`), measured as `before`")
    ap.add_argument("--fuzz-examples", type=int, default=300)
    ap.add_argument("--bodies", type=int, default=2000)
    ap.add_argument("--synapses", type=int, default=40000)
    args = ap.parse_args()
    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        ap.error(f"--phases: unknown {unknown}; choose from {','.join(PHASES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("cxgraph", "pipeline", "neo4j", "httpx", "distributed"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    work = args.workdir
    if work.exists():
        subprocess.run(["chattr", "-R", "-i", str(work)], capture_output=True)
    inputs = work / "inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    good = inputs / "good"
    write_tileset(good, n_sections=8)
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "command": " ".join(["python", *sys.argv]), "failed_phases": []}
    out = work / "bench_reliability.json"

    def save() -> None:
        out.write_text(json.dumps(result, indent=1, default=str))

    def phase(name: str, run) -> None:
        """Run one phase; whatever happens, record it and write the JSON so far."""
        if name not in phases:
            return
        t0 = time.perf_counter()
        try:
            result[name] = run()
        except Exception as e:  # noqa: BLE001 - the run goes on; the failure is recorded
            log.exception("phase %s failed", name)
            result[name] = {"error": f"{type(e).__name__}: {e}"[:1000]}
            result["failed_phases"].append(name)
        result.setdefault("phase_seconds", {})[name] = round(time.perf_counter() - t0, 1)
        save()

    # the graph workspace: its managed Neo4j serves parts 1 (API cases), 2 (load cut), 3, 4
    ws = Workspace.create(work / "graph_ws", Config().with_overrides(
        ["api.rate_per_s=1000", "api.rate_burst=1000"]))
    neo4j = managed_server(ws)
    started_neo4j = neo4j.pid() is None and not external_connection(ws.config["neo4j"])
    store = GraphStore.for_workspace(ws)
    snap = generate(args.bodies, args.synapses)
    try:
        def bad_inputs() -> dict:
            pipeline_cases = bad_pipeline_inputs(inputs, good)
            store.clear()
            store.apply_schema()
            load_snapshot(store, snap)
            cases = pipeline_cases + bad_api_requests(ws, store)
            tally = {k: sum(c["outcome"] == k for c in cases)
                     for k in ("clear", "handled", "traceback", "silent")}
            log.info("bad inputs: %s", tally)
            return {"tried": len(cases), **tally, "cases": cases}

        phase("bad_inputs", bad_inputs)
        phase("crash_points", lambda: {
            "pipeline": crash_points(inputs, good, args.crash_points),
            "graph_load": load_cut(store, store.conn, args.load_cuts)})
        store.clear()
        store.apply_schema()
        load_snapshot(store, snap)
        ids = [int(r[0]) for r in store.read("MATCH (n:Segment) WHERE n.validTo IS NULL "
                                             "RETURN n.bodyId LIMIT 5000").rows]
        tokens = TokenStore.for_workspace(ws.root)
        client_tokens = [tokens.create(f"client{k}", "read")[0] for k in range(args.clients)]
        hog, _ = tokens.create("hog", "read")
        trivial, _ = tokens.create("trivial", "read")
        fz_read, _ = tokens.create("fuzz-read", "read")
        fz_write, _ = tokens.create("fuzz-write", "write")
        phase("starvation", lambda: starvation(ws, trivial, hog, ids[0],
                                               args.starvation_seconds, args.before_src))
        port = free_port()
        server = start_server(ws, port)
        base = f"http://127.0.0.1:{port}"
        try:
            def load() -> dict:
                asyncio.run(mixed_load(base, client_tokens[:2], ids, 5.0, warmup=True))
                res = asyncio.run(mixed_load(base, client_tokens, ids, args.seconds))
                return {**res, "load_average_1m": round(os.getloadavg()[0], 1)}

            phase("load", load)
            phase("fuzz", lambda: fuzz(base, fz_read, fz_write, args.fuzz_examples))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        store.close()
        save()
        if started_neo4j:
            neo4j.stop()
    summary = {k: v for k, v in result.items() if k != "bad_inputs"}
    if "bad_inputs" in result:
        summary["bad_inputs"] = {k: v for k, v in result["bad_inputs"].items() if k != "cases"}
    print(json.dumps(summary, indent=1, default=str))
    print(f"full results: {out}")
    return 1 if result["failed_phases"] else 0


if __name__ == "__main__":
    sys.exit(main())
