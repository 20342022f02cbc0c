"""Consistency checks of the graph, after a load and as ``cxgraph check``.

Each check is one read query returning the number of violations and up to ten
examples. They hold for the current version (bodies' counts are current):

- ``connects_to_weight``: every current ``ConnectsTo`` has ``weightHR`` equal to
  its synapse count and ``weight`` equal to the count at or above
  ``Meta.postHighAccuracyThreshold`` (synapse-level data only);
- ``body_synapse_counts``: every current body's ``pre``/``post`` equal its current
  synapses (for an imported edge list: ``downstream``/``upstream`` and
  ``pre``/``post`` equal the sums of its outgoing/incoming ``ConnectsTo`` weights);
- ``synapse_bodies``: every current synapse belongs to exactly one current body
  and has exactly one current partner;
- ``supervoxel_parts``: every current supervoxel is part of at most one body, a
  current one;
- ``meta_totals``: ``Meta.totalPreCount``/``totalPostCount`` equal the synapses;
- ``connections_table`` (with a workspace): ``tables/connections.parquet``
  equals the graph's current ``ConnectsTo`` (pre, post, weightHR).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import polars as pl

from cxgraph.graph.store import GraphStore

log = logging.getLogger(__name__)

_WEIGHTS = """
MATCH (m:Meta) WITH coalesce(max(m.postHighAccuracyThreshold), 0.0) AS hi
MATCH (a:Segment)-[e:ConnectsTo]->(b:Segment) WHERE e.validTo IS NULL
OPTIONAL MATCH (qs:SynapseSet
                {synapseSetId: toString(a.bodyId) + '_' + toString(b.bodyId) + '_post'})
CALL (qs, hi) {
  OPTIONAL MATCH (qs)-[c:Contains]->(s:Synapse)
  WHERE c.validTo IS NULL AND s.validTo IS NULL
  RETURN count(s) AS n, sum(CASE WHEN s.confidence >= hi THEN 1 ELSE 0 END) AS nHi
}
WITH a, b, e, n, nHi WHERE e.weightHR <> n OR e.weight <> nHi
WITH collect({pre: a.bodyId, post: b.bodyId, weight: e.weight, weightHR: e.weightHR,
              synapses: n, synapsesHighConfidence: nHi}) AS bad
RETURN size(bad) AS n, bad[..10] AS examples
"""

_BODY_COUNTS = """
MATCH (b:Segment) WHERE b.validTo IS NULL
CALL (b) {
  OPTIONAL MATCH (b)-[:Contains]->(:SynapseSet)-[c:Contains]->(s:Synapse)
  WHERE c.validTo IS NULL AND s.validTo IS NULL
  RETURN sum(CASE s.type WHEN 'pre' THEN 1 ELSE 0 END) AS pre,
         sum(CASE s.type WHEN 'post' THEN 1 ELSE 0 END) AS post
}
WITH b, pre, post WHERE coalesce(b.pre, 0) <> pre OR coalesce(b.post, 0) <> post
WITH collect({bodyId: b.bodyId, pre: b.pre, post: b.post, synapsesPre: pre,
              synapsesPost: post}) AS bad
RETURN size(bad) AS n, bad[..10] AS examples
"""

_BODY_WEIGHTS = """
MATCH (b:Segment) WHERE b.validTo IS NULL
CALL (b) {
  OPTIONAL MATCH (b)-[e:ConnectsTo]->() WHERE e.validTo IS NULL
  RETURN coalesce(sum(e.weight), 0) AS down
}
CALL (b) {
  OPTIONAL MATCH (b)<-[e:ConnectsTo]-() WHERE e.validTo IS NULL
  RETURN coalesce(sum(e.weight), 0) AS up
}
WITH b, down, up WHERE coalesce(b.downstream, 0) <> down OR coalesce(b.upstream, 0) <> up
                    OR coalesce(b.pre, 0) <> down OR coalesce(b.post, 0) <> up
WITH collect({bodyId: b.bodyId, downstream: b.downstream, upstream: b.upstream, pre: b.pre,
              post: b.post, connectsToOut: down, connectsToIn: up}) AS bad
RETURN size(bad) AS n, bad[..10] AS examples
"""

_SYNAPSE_BODIES = """
MATCH (s:Synapse) WHERE s.validTo IS NULL
CALL (s) {
  OPTIONAL MATCH (b:Segment)-[:Contains]->(:SynapseSet)-[c:Contains]->(s)
  WHERE c.validTo IS NULL AND b.validTo IS NULL
  RETURN count(b) AS owners
}
CALL (s) {
  OPTIONAL MATCH (s)-[:SynapsesTo]-(o:Synapse) WHERE o.validTo IS NULL
  RETURN count(o) AS partners
}
WITH s, owners, partners WHERE owners <> 1 OR partners <> 1
WITH collect({synapseId: s.synapseId, type: s.type, bodies: owners, partners: partners}) AS bad
RETURN size(bad) AS n, bad[..10] AS examples
"""

_SUPERVOXELS = """
MATCH (sv:Supervoxel) WHERE sv.validTo IS NULL
CALL (sv) {
  OPTIONAL MATCH (sv)-[p:PartOf]->(b:Segment) WHERE p.validTo IS NULL
  RETURN count(p) AS parts, sum(CASE WHEN b.validTo IS NULL THEN 0 ELSE 1 END) AS retired
}
WITH sv, parts, retired WHERE parts > 1 OR retired > 0
WITH collect({svId: sv.svId, bodies: parts, retiredBodies: retired}) AS bad
RETURN size(bad) AS n, bad[..10] AS examples
"""

_META = """
MATCH (m:Meta)
CALL () {
  MATCH (s:Synapse) WHERE s.validTo IS NULL
  RETURN sum(CASE s.type WHEN 'pre' THEN 1 ELSE 0 END) AS pre,
         sum(CASE s.type WHEN 'post' THEN 1 ELSE 0 END) AS post
}
WITH m, pre, post WHERE m.totalPreCount <> pre OR m.totalPostCount <> post
WITH collect({dataset: m.dataset, totalPreCount: m.totalPreCount,
              totalPostCount: m.totalPostCount, synapsesPre: pre, synapsesPost: post}) AS bad
RETURN size(bad) AS n, bad[..10] AS examples
"""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    violations: int
    examples: list[dict[str, Any]]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.violations == 0


@dataclasses.dataclass(frozen=True)
class ConsistencyReport:
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [dataclasses.asdict(c) for c in self.checks]}

    def summary(self) -> str:
        return "\n".join(
            f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.violations} violation(s)"
            + ("" if c.ok else f", e.g. {c.examples[:3]}") for c in self.checks)


def _run(store: GraphStore, name: str, query: str, timeout_s: float) -> CheckResult:
    import time

    t0 = time.perf_counter()
    rec = store.read(query, timeout_s=timeout_s).records()[0]
    return CheckResult(name, int(rec["n"]), rec["examples"], round(time.perf_counter() - t0, 3))


def check_graph(store: GraphStore, tables_dir: Path | None = None,
                timeout_s: float = 3600.0) -> ConsistencyReport:
    """Run every check; ``tables_dir`` adds the comparison with ``connections.parquet``."""
    meta = store.read("MATCH (m:Meta) RETURN m.synapseLevel AS s").rows
    synapse_level = bool(meta and meta[0][0])
    checks = []
    if synapse_level:
        checks.append(_run(store, "connects_to_weight", _WEIGHTS, timeout_s))
        checks.append(_run(store, "body_synapse_counts", _BODY_COUNTS, timeout_s))
        checks.append(_run(store, "synapse_bodies", _SYNAPSE_BODIES, timeout_s))
        checks.append(_run(store, "meta_totals", _META, timeout_s))
    else:
        checks.append(_run(store, "body_synapse_counts", _BODY_WEIGHTS, timeout_s))
    checks.append(_run(store, "supervoxel_parts", _SUPERVOXELS, timeout_s))
    if tables_dir is not None and (Path(tables_dir) / "connections.parquet").exists():
        checks.append(_connections_table(store, Path(tables_dir) / "connections.parquet",
                                         timeout_s))
    report = ConsistencyReport(checks)
    (log.info if report.ok else log.error)("graph consistency:\n%s", report.summary())
    return report


def _connections_table(store: GraphStore, path: Path, timeout_s: float) -> CheckResult:
    import time

    t0 = time.perf_counter()
    table = pl.read_parquet(path).select(
        pl.col("pre").cast(pl.Int64), pl.col("post").cast(pl.Int64),
        pl.col("weight").cast(pl.Int64).alias("table_weight"))
    res = store.read("MATCH (a:Segment)-[e:ConnectsTo]->(b:Segment) WHERE e.validTo IS NULL "
                     "RETURN a.bodyId AS pre, b.bodyId AS post, e.weightHR AS graph_weight",
                     timeout_s=timeout_s)
    graph = pl.DataFrame(res.rows, schema={"pre": pl.Int64, "post": pl.Int64,
                                           "graph_weight": pl.Int64}, orient="row")
    j = table.join(graph, on=["pre", "post"], how="full", coalesce=True)
    bad = j.filter(pl.col("table_weight").fill_null(0) != pl.col("graph_weight").fill_null(0))
    return CheckResult("connections_table", bad.height, bad.head(10).to_dicts(),
                       round(time.perf_counter() - t0, 3))
