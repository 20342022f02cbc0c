"""GraphQL API benchmark: latency of GraphQL vs raw Cypher on the same server, and 16
concurrent clients.

    NEO4J_URI=bolt://... NEO4J_PASSWORD=... python benchmarks/bench_api.py --scale 0.02
    python benchmarks/bench_api.py --scale 0.02 --workdir /tmp/cxgraph-bench-api --no-load

Steps: generate the synthetic graph of ``bench_graph_load.generate`` (scale 1.0 = 100k
bodies, 5M synapses; 0.02 = 2k bodies, 100k synapses) and load it through Bolt
(skipped with --no-load when the graph is already there); start ``cxgraph serve`` as a
separate process (uvicorn) with a read token; then, for each of three questions —
partners of a neuron, connections between two sets of 200 bodies, synapses of a body
(first 1000) — time the same answer three ways, sequentially, p50/p99 over --reps
random inputs:

- ``graphql``: POST /graphql through HTTP (httpx client),
- ``cypher_http``: the same named query's Cypher through POST /cypher on the same server
  (read-only path: EXPLAIN check + READ transaction),
- ``bolt``: the same Cypher straight through the driver from the client process.

Answers are compared (row counts). Then ``--clients`` concurrent GraphQL clients send
``--requests`` requests in total (a mix of the three questions): errors, p50/p99 and
throughput. Prints JSON and writes WORKDIR/bench_api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from cxgraph.api.auth import TokenStore
from cxgraph.graph import queries as Q
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.store import GraphStore
from cxgraph.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_graph_load import generate  # noqa: E402

log = logging.getLogger("bench_api")

GQL = {
    "partners": """query($id: Id64!) { partners(bodyId: $id, first: 100) {
        neuron { bodyId type } weight direction } }""",
    "connections": """query($pre: [Id64!]!, $post: [Id64!]!) {
        connections(pre: $pre, post: $post, first: 1000) { items { pre post weight } } }""",
    "synapses": """query($id: Id64!) { synapses(bodyId: $id, first: 1000) {
        items { synapseId type confidence location { x y z } partnerBodyIds } } }""",
}


def cypher_for(case: str, args: dict) -> tuple[str, dict]:
    """The named query and parameters the API runs for one GraphQL request."""
    if case == "partners":
        q = Q.get("api_partners")
        return q.text, q.bind({"ids": [args["id"]], "direction": "both", "first": 100})
    if case == "connections":
        q = Q.get("api_connections")
        return q.text, q.bind({"pre": args["pre"], "post": args["post"], "first": 1001})
    q = Q.get("api_synapses_of_bodies")
    return q.text, q.bind({"ids": [args["id"]], "first": 1001})


def graphql_rows(case: str, data: dict) -> int:
    if case == "partners":
        return len(data["partners"])
    return len(data[case]["items"])


def cypher_rows(case: str, rows: list) -> int:
    if case == "partners":
        return len(rows[0][1]) if rows else 0
    return min(len(rows), 1000)


def pct(samples: list[float]) -> dict:
    a = np.asarray(samples) * 1000.0
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2), "n": len(samples)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ws: Workspace, port: int, src: Path | None = None) -> subprocess.Popen:
    """``cxgraph serve`` on ``port`` (of the source tree ``src``, default the installed one).
    Its stderr goes to WS/serve-PORT.log: a pipe nobody reads would fill and stop it."""
    env = os.environ.copy()
    if src is not None:
        env["PYTHONPATH"] = str(src)
    log_path = ws.root / f"serve-{port}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cxgraph", "serve", "--workspace", str(ws.root), "--port",
             str(port), "--neuprint-port", "0"], env=env, stdout=subprocess.DEVNULL,
            stderr=log_file, cwd=src)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cxgraph serve exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("cxgraph serve did not answer within 60 s")


def inputs(snap, n: int, seed: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    syn = snap.synapses
    active = sorted(set(syn["pre_body"].to_list()) | set(syn["post_body"].to_list()))
    bodies = [rng.choice(active) for _ in range(n)]
    sets = [(rng.sample(active, 200), rng.sample(active, 200)) for _ in range(n)]
    return {"partners": [{"id": b} for b in bodies],
            "connections": [{"pre": p, "post": q} for p, q in sets],
            "synapses": [{"id": b} for b in bodies]}


def latency(client: httpx.Client, store: GraphStore, token: str, cases: dict) -> dict:
    hdr = {"Authorization": f"Bearer {token}"}
    out = {}
    for case, arg_list in cases.items():
        times = {"graphql": [], "cypher_http": [], "bolt": []}
        mismatches = 0
        for i, args in enumerate(arg_list):
            gvars = {k: ([str(x) for x in v] if isinstance(v, list) else str(v))
                     for k, v in args.items()}
            text, params = cypher_for(case, args)
            t0 = time.perf_counter()
            g = client.post("/graphql", json={"query": GQL[case], "variables": gvars},
                            headers=hdr)
            t1 = time.perf_counter()
            c = client.post("/cypher", json={"query": text, "params": params}, headers=hdr)
            t2 = time.perf_counter()
            b = store.read(text, params)
            t3 = time.perf_counter()
            gj, cj = g.json(), c.json()
            if "errors" in gj or "error" in cj:
                raise RuntimeError(f"{case}: {gj.get('errors') or cj.get('error')}")
            n_g, n_c, n_b = graphql_rows(case, gj["data"]), cypher_rows(case, cj["data"]), \
                cypher_rows(case, b.rows)
            mismatches += not (n_g == n_c == n_b)
            if i >= 3:  # the first few warm plan caches and connections
                times["graphql"].append(t1 - t0)
                times["cypher_http"].append(t2 - t1)
                times["bolt"].append(t3 - t2)
        res = {k: pct(v) for k, v in times.items()}
        for base in ("cypher_http", "bolt"):
            res[f"ratio_p50_vs_{base}"] = round(res["graphql"]["p50_ms"] /
                                                res[base]["p50_ms"], 2)
            res[f"ratio_p99_vs_{base}"] = round(res["graphql"]["p99_ms"] /
                                                res[base]["p99_ms"], 2)
        res["answer_mismatches"] = mismatches
        out[case] = res
        log.info("%s: %s", case, json.dumps(res))
    return out


async def concurrent(base_url: str, token: str, cases: dict, clients: int,
                     requests: int) -> dict:
    hdr = {"Authorization": f"Bearer {token}"}
    mix = [(case, args) for case, lst in cases.items() for args in lst]
    random.Random(7).shuffle(mix)
    work = [mix[i % len(mix)] for i in range(requests)]
    queue: asyncio.Queue = asyncio.Queue()
    for w in work:
        queue.put_nowait(w)
    times: list[float] = []
    errors: list[str] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            while not queue.empty():
                case, args = queue.get_nowait()
                gvars = {k: ([str(x) for x in v] if isinstance(v, list) else str(v))
                         for k, v in args.items()}
                t0 = time.perf_counter()
                try:
                    r = await client.post("/graphql", headers=hdr,
                                          json={"query": GQL[case], "variables": gvars})
                    body = r.json()
                    if r.status_code != 200 or "errors" in body:
                        errors.append(str(body)[:200])
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": requests, "errors": len(errors),
            "first_errors": errors[:3], "wall_s": round(wall, 2),
            "requests_per_s": round(requests / wall, 1), **pct(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.02)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cxgraph-bench-api"))
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=1600)
    ap.add_argument("--no-load", action="store_true", help="use the graph already loaded")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    ws = Workspace.create(args.workdir)
    snap = generate(int(100_000 * args.scale), int(5_000_000 * args.scale))
    store = GraphStore.for_workspace(ws)
    load = None
    if not args.no_load:
        store.clear()
        t0 = time.perf_counter()
        report = load_snapshot(store, snap)
        load = {"seconds": round(time.perf_counter() - t0, 1), **report.to_dict()}
        log.info("loaded: %s", load)
    token, _ = TokenStore.for_workspace(ws.root).create("bench", "read")
    port = free_port()
    server = start_server(ws, port)
    try:
        cases = inputs(snap, args.reps + 3, seed=1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            lat = latency(client, store, token, cases)
        conc = asyncio.run(concurrent(f"http://127.0.0.1:{port}", token, cases, args.clients,
                                      args.requests))
        log.info("concurrency: %s", conc)
    finally:
        server.terminate()
        server.wait(timeout=30)
        store.close()
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "graph": {"bodies": snap.body_table().height, "synapses": snap.synapses.height,
                  "scale": args.scale},
        "load": load, "latency": lat, "concurrency": conc,
    }
    out = args.workdir / "bench_api.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
