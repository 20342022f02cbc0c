"""Graph load and query benchmark: Bolt batches vs neo4j-admin bulk import, query latency.

    python benchmarks/bench_graph_load.py --scale 1.0 --workdir /tmp/cxgraph-bench-graph
    python benchmarks/bench_graph_load.py --scale 0.02     # quick run (2k bodies, 100k synapses)

Scale 1.0 is 100k bodies, 5M synapses, 400k supervoxels (4 per body, merge tree
inside each body). Partners are local (each body talks to ~30 others, hubs are
more active), so connections have a realistic spread of weights.

Steps: generate the tables; load them into an empty database through Bolt
(``load_snapshot``) — synapses/s; then the same tables through
``neo4j-admin database import`` (``bulk_load_workspace``, server stopped and
restarted, schema indexes built afterwards) — synapses/s; the consistency check
on the imported graph; then query latency p50/p99 on the imported graph:
partners of a neuron, connections between two sets of 200 bodies, synapses of
a body as raw Cypher through three paths (versioned SynapseSet traversal,
Synapse.bodyId index, neuPrint-style traversal), whose answers are compared.
Prints a JSON summary and writes it to WORKDIR/bench_graph_load.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl

from cxgraph import neo4j_server
from cxgraph.config import Config
from cxgraph.graph import queries as Q
from cxgraph.graph.bulk import bulk_load_workspace
from cxgraph.graph.consistency import check_graph
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.snapshot import make_snapshot
from cxgraph.graph.store import GraphStore
from cxgraph.workspace import Workspace

log = logging.getLogger("bench_graph_load")


def generate(n_bodies: int, n_synapses: int, sv_per_body: int = 4, seed: int = 0):
    """Synthetic pipeline tables at scale (ids >= 1; coordinates in voxels, z, y, x)."""
    rng = np.random.default_rng(seed)
    body_ids = np.arange(1, n_bodies + 1, dtype=np.int64) * 10 + 7  # sparse, minted-looking
    # presynaptic activity: heavy-tailed (some hubs)
    act = rng.pareto(1.5, n_bodies) + 1.0
    pre_idx = rng.choice(n_bodies, n_synapses, p=act / act.sum())
    k = np.minimum(rng.geometric(0.12, n_synapses) - 1, 29)  # which of ~30 partners
    post_idx = (pre_idx * 7919 + (k + 1) * 104729) % n_bodies
    post_idx = np.where(post_idx == pre_idx, (post_idx + 1) % n_bodies, post_idx)
    centre = rng.uniform([0, 0, 0], [2000, 20000, 20000], (n_bodies, 3))
    pre_loc = centre[pre_idx] + rng.normal(0, 50, (n_synapses, 3))
    post_loc = pre_loc + rng.normal(0, 3, (n_synapses, 3))
    n_sv = n_bodies * sv_per_body
    sv_ids = np.arange(1, n_sv + 1, dtype=np.int64) + (1 << 40)  # block-encoded-looking
    sv_body = np.repeat(body_ids, sv_per_body)
    blocks = rng.integers(0, 512, n_sv)
    syn = pl.DataFrame({
        "synapse_id": np.arange(1, n_synapses + 1, dtype=np.int64),
        "pre_body": body_ids[pre_idx], "post_body": body_ids[post_idx],
        "pre_sv": sv_ids[pre_idx * sv_per_body + rng.integers(0, sv_per_body, n_synapses)],
        "post_sv": sv_ids[post_idx * sv_per_body + rng.integers(0, sv_per_body, n_synapses)],
        "pre_z": pre_loc[:, 0].round(), "pre_y": pre_loc[:, 1].round(),
        "pre_x": pre_loc[:, 2].round(),
        "post_z": post_loc[:, 0].round(), "post_y": post_loc[:, 1].round(),
        "post_x": post_loc[:, 2].round(),
        "confidence": rng.uniform(0.5, 1.0, n_synapses).round(3),
        "block": rng.integers(0, 512, n_synapses), "stage_run": "bench-synapses",
    })
    sv = pl.DataFrame({"sv_id": sv_ids, "body_id": sv_body,
                       "size": rng.integers(1000, 100000, n_sv), "block": blocks,
                       "stage_run": "bench-agglomerate"})
    # merge tree inside each body: sv j joins sv j-1 (a chain), random affinities
    first = np.arange(n_sv) % sv_per_body != 0
    idx = np.nonzero(first)[0]
    merges = pl.DataFrame({"sv_a": sv_ids[idx - 1], "sv_b": sv_ids[idx],
                           "affinity": rng.uniform(0.3, 1.0, idx.size).round(4),
                           "step": rng.permutation(idx.size), "block": blocks[idx],
                           "stage_run": "bench-agglomerate"})
    return make_snapshot("pipeline", f"synthetic(seed={seed})", synapses=syn, supervoxels=sv,
                         merges=merges, voxel_size=(40.0, 8.0, 8.0))


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2), "n": len(samples)}


def time_query(store: GraphStore, text: str, param_sets: list[dict]) -> tuple[dict, list]:
    out, results = [], []
    store.read(text, param_sets[0])  # warm the plan cache
    for p in param_sets:
        t0 = time.perf_counter()
        res = store.read(text, p, timeout_s=120)
        out.append(time.perf_counter() - t0)
        results.append(res)
    return percentiles(out), results


def bench_queries(store: GraphStore, snap, reps: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    body = snap.body_table().filter(pl.col("pre") + pl.col("post") > 0)
    ids = body["body_id"].to_numpy()
    pick = [int(i) for i in rng.choice(ids, reps)]
    res: dict[str, dict] = {}
    res["partners"], _ = time_query(store, Q.get("partners").text,
                                    [Q.get("partners").bind({"bodyId": b}) for b in pick])
    sets = [Q.get("connections_between").bind({
        "pre": [int(i) for i in rng.choice(ids, 200, replace=False)],
        "post": [int(i) for i in rng.choice(ids, 200, replace=False)]})
        for _ in range(max(reps // 4, 10))]
    res["connections_200x200"], _ = time_query(store, Q.get("connections_between").text, sets)
    answers = {}
    for name in ("synapses_of_body", "synapses_of_body_current", "synapses_of_body_neuprint"):
        q = Q.get(name)
        res[name], rows = time_query(store, q.text, [q.bind({"bodyId": b}) for b in pick])
        answers[name] = [sorted((r[0], r[1], r[4]) for r in x.rows) for x in rows]
    res["synapses_same_answer"] = (answers["synapses_of_body"] == answers[
        "synapses_of_body_current"] == answers["synapses_of_body_neuprint"])
    res["synapses_per_body_mean"] = round(float(np.mean(
        [len(a) for a in answers["synapses_of_body"]])), 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 100k bodies, 5M synapses")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cxgraph-bench-graph"))
    ap.add_argument("--skip-bolt", action="store_true", help="Only the bulk import.")
    ap.add_argument("--reps", type=int, default=200, help="Query repetitions per kind.")
    ap.add_argument("--heap-mb", type=int, default=2048)
    ap.add_argument("--pagecache-mb", type=int, default=3072)
    ap.add_argument("--batch-size", type=int, default=5000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    n_bodies, n_syn = int(100_000 * args.scale), int(5_000_000 * args.scale)
    t0 = time.perf_counter()
    snap = generate(n_bodies, n_syn)
    t_gen = time.perf_counter() - t0
    log.info("generated %d bodies, %d synapses in %.1f s", n_bodies, n_syn, t_gen)

    cfg = Config().with_overrides([f"neo4j.heap_mb={args.heap_mb}",
                                   f"neo4j.pagecache_mb={args.pagecache_mb}",
                                   f"neo4j.batch_size={args.batch_size}",
                                   "graph.check_after_load=false"])
    ws = Workspace.create(args.workdir, cfg)
    server = neo4j_server.managed_server(ws)
    out: dict = {"scale": args.scale, "bodies": n_bodies, "synapses": n_syn,
                 "supervoxels": snap.supervoxels.height, "merges": snap.merges.height,
                 "generate_s": round(t_gen, 1), "host": platform.node(),
                 "cpus": __import__("os").cpu_count(), "heap_mb": args.heap_mb,
                 "pagecache_mb": args.pagecache_mb, "batch_size": args.batch_size}

    if not args.skip_bolt:
        conn = server.start()
        with GraphStore(conn, batch_size=args.batch_size) as store:
            store.clear()
            r = load_snapshot(store, snap, ws.config["graph"])
        out["bolt"] = {"seconds": r.seconds, "synapses_per_s": r.synapses_per_s,
                       "connections": r.connections, "phases": r.phases}
        log.info("Bolt: %s", out["bolt"])

    r = bulk_load_workspace(ws, snap, ws.config["graph"])
    out["bulk"] = {"seconds": r.seconds, "synapses_per_s": r.synapses_per_s,
                   "connections": r.connections, "phases": r.phases,
                   "import_synapses_per_s": round(
                       n_syn / r.phases["neo4j_admin_import"], 1)}
    log.info("bulk: %s", out["bulk"])
    conn = server.start()
    with GraphStore(conn, batch_size=args.batch_size) as store:
        t0 = time.perf_counter()
        report = check_graph(store)
        out["check"] = {"ok": report.ok, "seconds": round(time.perf_counter() - t0, 1),
                        "per_check_s": {c.name: c.seconds for c in report.checks}}
        out["queries"] = bench_queries(store, snap, args.reps)
        out["graph"] = {
            "nodes": store.read("MATCH (n) RETURN count(n)").rows[0][0],
            "relationships": store.read("MATCH ()-[r]->() RETURN count(r)").rows[0][0]}
    text = json.dumps(out, indent=1)
    (args.workdir / "bench_graph_load.json").write_text(text)
    print(text)  # noqa: T201 (a script's result)
    server.stop()


if __name__ == "__main__":
    main()
