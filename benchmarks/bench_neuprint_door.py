"""neuPrint front door benchmark: neuprint-python's ``fetch_adjacencies`` for 200 bodies
through ``cxgraph serve``'s HTTPS door vs the same Cypher over Bolt.

    python benchmarks/bench_neuprint_door.py --scale 0.02
    python benchmarks/bench_neuprint_door.py --scale 1.0 --bulk     # the 5M-synapse graph
    python benchmarks/bench_neuprint_door.py --scale 1.0 --no-load  # graph already there

Steps: generate the synthetic graph of ``bench_graph_load.generate`` (scale 1.0 = 100k
bodies, 5M synapses) and load it (Bolt, or ``--bulk`` through neo4j-admin import); start
``cxgraph serve`` with its HTTPS listener and a read token; then, for ``--reps`` random
sets of 200 bodies, time

- ``door``: ``neuprint.fetch_adjacencies(sources=<200 bodies>, targets=None)`` end to end
  (the client's count, neuron and connection queries over HTTPS, its pandas work);
- ``bolt``: the Cypher that call sent (captured from the client's debug log, with the
  door's rewrites applied so Neo4j 5 runs it) replayed through the driver.

Answers are compared (connection rows from the door vs rows of the Bolt connection
queries). Prints JSON and writes WORKDIR/bench_neuprint_door.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

from cxgraph.api.auth import TokenStore
from cxgraph.api.neuprint import rewrite, timeboxed
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.store import GraphStore
from cxgraph.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import free_port, pct  # noqa: E402
from bench_graph_load import generate  # noqa: E402

log = logging.getLogger("bench_neuprint_door")


class Captured(logging.Handler):
    """The Cypher neuprint-python sends (its client logs each query at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queries: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Performing cypher query"):
            self.queries.append(msg.split("\n", 1)[1])


def start_server(ws: Workspace, port: int, https_port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxgraph", "serve", "-w", str(ws.root), "--port", str(port),
         "--neuprint-port", str(https_port)], env=os.environ.copy(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cert = ws.root / "tls" / "cert.pem"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cxgraph serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            requests.get(f"https://127.0.0.1:{https_port}/api/version", verify=str(cert),
                         timeout=1)
            return proc
        except (requests.ConnectionError, OSError):
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("cxgraph serve did not answer within 120 s")


def bolt_replay(store: GraphStore, queries: list[str]) -> int:
    """Run the client's queries over Bolt; rows of its connection queries."""
    rows = 0
    for q in queries:
        boxed = timeboxed(q)
        text = rewrite(boxed[0] if boxed else q)
        result = store.read(text, {}, 60.0)
        if "bodyId_pre" in result.columns:
            rows += len(result.rows)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.02)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cxgraph-bench-door"))
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--bulk", action="store_true", help="first load through neo4j-admin")
    ap.add_argument("--no-load", action="store_true", help="use the graph already loaded")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import neuprint

    ws = Workspace.create(args.workdir)
    snap = generate(int(100_000 * args.scale), int(5_000_000 * args.scale))
    load = None
    if not args.no_load:
        t0 = time.perf_counter()
        if args.bulk:
            from cxgraph.graph.bulk import bulk_load_workspace

            report = bulk_load_workspace(ws, snap)
        else:
            with GraphStore.for_workspace(ws) as s:
                s.clear()
                report = load_snapshot(s, snap)
        load = {"seconds": round(time.perf_counter() - t0, 1), "bulk": args.bulk,
                **report.to_dict()}
        log.info("loaded: %s", load)
    store = GraphStore.for_workspace(ws)
    token, _ = TokenStore.for_workspace(ws.root).create("bench", "read")
    port, https_port = free_port(), free_port()
    server = start_server(ws, port, https_port)
    capture = Captured()
    client_log = logging.getLogger("neuprint.client")
    client_log.addHandler(capture)
    client_log.setLevel(logging.DEBUG)
    client_log.propagate = False
    try:
        c = neuprint.Client(f"https://127.0.0.1:{https_port}", token=token,
                            verify=str(ws.root / "tls" / "cert.pem"), progress=False)
        rng = random.Random(1)
        active = sorted(set(snap.synapses["pre_body"].to_list()))
        door, bolt, mismatches, queries_per_call = [], [], 0, []
        for i in range(args.reps + 2):
            bodies = rng.sample(active, 200)
            capture.queries.clear()
            t0 = time.perf_counter()
            _, conn = neuprint.fetch_adjacencies(bodies, None, omit_rois=True, client=c)
            t1 = time.perf_counter()
            sent = list(capture.queries)
            n_bolt = bolt_replay(store, sent)
            t2 = time.perf_counter()
            mismatches += len(conn) != n_bolt
            if i >= 2:  # warm-up: plan caches, TLS session, client caches
                door.append(t1 - t0)
                bolt.append(t2 - t1)
                queries_per_call.append(len(sent))
        res = {"door": pct(door), "bolt": pct(bolt),
               "ratio_p50": round(float(np.median(door)) / float(np.median(bolt)), 2),
               "queries_per_call": int(np.median(queries_per_call)),
               "answer_mismatches": mismatches, "bodies_per_call": 200}
        log.info("fetch_adjacencies: %s", res)
    finally:
        server.terminate()
        server.wait(timeout=30)
        store.close()
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "graph": {"bodies": snap.body_table().height, "synapses": snap.synapses.height,
                        "scale": args.scale},
              "load": load, "fetch_adjacencies": res}
    out = args.workdir / "bench_neuprint_door.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
