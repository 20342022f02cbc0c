"""Load a ``Snapshot`` into the graph as one version, through Bolt batches.

Mark and sweep: every object of the snapshot is MERGEd on its unique key and
stamped ``seenIn = v``; afterwards whatever is still current but was not seen in
``v`` gets ``validTo = v``. A snapshot whose fingerprint equals the current
version's is re-stamped with that same version, so re-loading changes nothing.
Retired bodies get ``(:Operation)-[:Retired]``, new ones ``[:Created]``, and
``(:Segment)-[:SupersededBy]->(:Segment)`` links an old body to each new body
that took one of its supervoxels (or, with an explicit ``operations`` table,
the bodies that operation names).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from typing import Any

import polars as pl

from cxgraph.errors import GraphError
from cxgraph.graph.coords import point_expr
from cxgraph.graph.meta import (
    VOLUME_ROI,
    body_roi_info,
    connection_roi_info,
    refresh_meta,
    stored_roi_parents,
)
from cxgraph.graph.params import GraphParams
from cxgraph.graph.snapshot import Snapshot
from cxgraph.graph.store import GraphStore

log = logging.getLogger(__name__)

# --- Cypher ------------------------------------------------------------------------

_CURRENT = "{x}.validTo IS NULL"

# Bodies carry the neuPrint properties (notes/neuprint-model.md; ROI counts from
# meta.body_roi_info) beside cxgraph's own (seenIn/validFrom, stageRun, block).
Q_BODIES = """
UNWIND $rows AS row
MERGE (s:Segment {bodyId: row.body_id})
  ON CREATE SET s.validFrom = $v
// an analyst's annotation (versioned, on :Annotation nodes) outranks the tables' values
WITH s, row, EXISTS { (s)-[:HasAnnotation]->(:Annotation) } AS annotated
SET s.seenIn = $v, s.size = row.size, s.pre = row.pre, s.post = row.post,
    s.upstream = row.upstream, s.downstream = row.downstream,
    s.synweight = row.upstream + row.downstream,
    s.status = CASE WHEN annotated THEN s.status ELSE row.status END,
    s.statusLabel = CASE WHEN annotated THEN s.statusLabel ELSE row.status END,
    s.type = CASE WHEN annotated THEN s.type ELSE row.type END,
    s.instance = CASE WHEN annotated THEN s.instance ELSE row.instance END, s.name = row.name,
    s.roiInfo = row.roi_info,
    s.stageRun = row.stage_run, s.block = row.block, s.kind = row.kind, s.class = row.class
SET s += coalesce(row.props, {})
// one boolean per ROI the body touches; $rois also names the ROIs to clear
FOREACH (k IN $rois | SET s[k] = CASE WHEN k IN coalesce(row.rois, []) THEN true END)
FOREACH (_ IN CASE WHEN row.neuron THEN [1] ELSE [] END | SET s:Neuron)
FOREACH (_ IN CASE WHEN row.neuron THEN [] ELSE [1] END | REMOVE s:Neuron)
"""

Q_SYNAPSES = f"""
UNWIND $rows AS row
MERGE (a:Synapse {{synapseId: row.synapse_id, type: 'pre'}})
  ON CREATE SET a.validFrom = $v
SET a.seenIn = $v, a.location = {point_expr("row.pre_")}, a.confidence = row.confidence,
    a.`{VOLUME_ROI}` = true, a.bodyId = row.pre_body, a.supervoxelId = row.pre_sv,
    a.stageRun = row.stage_run, a.block = row.block
FOREACH (k IN $rois | SET a[k] = CASE WHEN k IN coalesce(row.pre_rois, []) THEN true END)
MERGE (b:Synapse {{synapseId: row.synapse_id, type: 'post'}})
  ON CREATE SET b.validFrom = $v
SET b.seenIn = $v, b.location = {point_expr("row.post_")}, b.confidence = row.confidence,
    b.`{VOLUME_ROI}` = true, b.bodyId = row.post_body, b.supervoxelId = row.post_sv,
    b.stageRun = row.stage_run, b.block = row.block
FOREACH (k IN $rois | SET b[k] = CASE WHEN k IN coalesce(row.post_rois, []) THEN true END)
MERGE (a)-[:SynapsesTo]->(b)
"""

# One row per connected body pair: the body-level ConnectsTo (versioned: an edge
# whose weights changed is retired and a new one created) and, for synapse-level
# data, the pair's two SynapseSets.
Q_CONNECTIONS = """
UNWIND $rows AS row
MATCH (a:Segment {bodyId: row.pre}), (b:Segment {bodyId: row.post})
OPTIONAL MATCH (a)-[e:ConnectsTo]->(b) WHERE e.validTo IS NULL
WITH a, b, row, e,
     (e IS NOT NULL AND e.weight = row.weight AND e.weightHR = row.weight_hr) AS same
FOREACH (_ IN CASE WHEN same THEN [1] ELSE [] END |
  SET e.seenIn = $v, e.weightHP = row.weight_hp, e.roiInfo = row.roi_info)
FOREACH (_ IN CASE WHEN e IS NOT NULL AND NOT same THEN [1] ELSE [] END | SET e.validTo = $v)
FOREACH (_ IN CASE WHEN same THEN [] ELSE [1] END |
  CREATE (a)-[:ConnectsTo {weight: row.weight, weightHR: row.weight_hr,
                           weightHP: row.weight_hp, roiInfo: row.roi_info,
                           validFrom: $v, seenIn: $v}]->(b))
FOREACH (_ IN CASE WHEN $synapseLevel THEN [1] ELSE [] END |
  MERGE (ps:SynapseSet {synapseSetId: row.pre_set})
  MERGE (qs:SynapseSet {synapseSetId: row.post_set})
  MERGE (a)-[:Contains]->(ps)
  MERGE (b)-[:Contains]->(qs)
  MERGE (ps)-[:ConnectsTo]->(qs))
"""

Q_FRESH_CONNECTIONS = """
UNWIND $rows AS row
MATCH (a:Segment {bodyId: row.pre}), (b:Segment {bodyId: row.post})
CREATE (a)-[:ConnectsTo {weight: row.weight, weightHR: row.weight_hr, weightHP: row.weight_hp,
                         roiInfo: row.roi_info, validFrom: $v, seenIn: $v}]->(b)
FOREACH (_ IN CASE WHEN $synapseLevel THEN [1] ELSE [] END |
  CREATE (a)-[:Contains]->(ps:SynapseSet {synapseSetId: row.pre_set})
  CREATE (b)-[:Contains]->(qs:SynapseSet {synapseSetId: row.post_set})
  CREATE (ps)-[:ConnectsTo]->(qs))
"""

Q_GAP_JUNCTIONS = """
UNWIND $rows AS row
MATCH (a:Segment {bodyId: row.pre}), (b:Segment {bodyId: row.post})
OPTIONAL MATCH (a)-[e:GapJunction]->(b) WHERE e.validTo IS NULL
WITH a, b, row, e, (e IS NOT NULL AND e.weight = row.weight) AS same
FOREACH (_ IN CASE WHEN same THEN [1] ELSE [] END | SET e.seenIn = $v)
FOREACH (_ IN CASE WHEN e IS NOT NULL AND NOT same THEN [1] ELSE [] END | SET e.validTo = $v)
FOREACH (_ IN CASE WHEN same THEN [] ELSE [1] END |
  CREATE (a)-[:GapJunction {weight: row.weight, validFrom: $v, seenIn: $v}]->(b))
"""

# A synapse joins its body's SynapseSet; the membership is versioned.
Q_MEMBERSHIP = """
UNWIND $rows AS row
MATCH (ps:SynapseSet {synapseSetId: row.pre_set})
MATCH (a:Synapse {synapseId: row.synapse_id, type: 'pre'})
OPTIONAL MATCH (ps)-[c:Contains]->(a) WHERE c.validTo IS NULL
FOREACH (_ IN CASE WHEN c IS NULL THEN [1] ELSE [] END |
  CREATE (ps)-[:Contains {validFrom: $v, seenIn: $v}]->(a))
SET c.seenIn = $v
WITH row
MATCH (qs:SynapseSet {synapseSetId: row.post_set})
MATCH (b:Synapse {synapseId: row.synapse_id, type: 'post'})
OPTIONAL MATCH (qs)-[d:Contains]->(b) WHERE d.validTo IS NULL
FOREACH (_ IN CASE WHEN d IS NULL THEN [1] ELSE [] END |
  CREATE (qs)-[:Contains {validFrom: $v, seenIn: $v}]->(b))
SET d.seenIn = $v
"""

# First load into an empty graph: nothing can exist yet, so CREATE (no MERGE, no
# Eager plans). Synapses, their pair link and their set memberships in one pass.
Q_FRESH_SYNAPSES = f"""
UNWIND $rows AS row
MATCH (ps:SynapseSet {{synapseSetId: row.pre_set}})
MATCH (qs:SynapseSet {{synapseSetId: row.post_set}})
CREATE (a:Synapse {{synapseId: row.synapse_id, type: 'pre', validFrom: $v, seenIn: $v,
                   location: {point_expr("row.pre_")}, confidence: row.confidence,
                   `{VOLUME_ROI}`: true,
                   bodyId: row.pre_body, supervoxelId: row.pre_sv, stageRun: row.stage_run,
                   block: row.block}})
CREATE (b:Synapse {{synapseId: row.synapse_id, type: 'post', validFrom: $v, seenIn: $v,
                   location: {point_expr("row.post_")}, confidence: row.confidence,
                   `{VOLUME_ROI}`: true,
                   bodyId: row.post_body, supervoxelId: row.post_sv, stageRun: row.stage_run,
                   block: row.block}})
FOREACH (k IN coalesce(row.pre_rois, []) | SET a[k] = true)
FOREACH (k IN coalesce(row.post_rois, []) | SET b[k] = true)
CREATE (a)-[:SynapsesTo]->(b)
CREATE (ps)-[:Contains {{validFrom: $v, seenIn: $v}}]->(a)
CREATE (qs)-[:Contains {{validFrom: $v, seenIn: $v}}]->(b)
"""

Q_FRESH_SUPERVOXELS = f"""
UNWIND $rows AS row
CREATE (s:Supervoxel {{svId: row.sv_id, validFrom: $v, seenIn: $v, size: row.size,
                      block: row.block, stageRun: row.stage_run,
                      centroid: CASE WHEN row.centroid_z IS NULL THEN null
                                     ELSE {point_expr("row.centroid_")} END}})
WITH s, row WHERE row.body_id IS NOT NULL AND row.body_id > 0
MATCH (b:Segment {{bodyId: row.body_id}})
CREATE (s)-[:PartOf {{validFrom: $v, seenIn: $v}}]->(b)
"""

Q_SUPERVOXELS = f"""
UNWIND $rows AS row
MERGE (s:Supervoxel {{svId: row.sv_id}})
  ON CREATE SET s.validFrom = $v
SET s.seenIn = $v, s.size = row.size, s.block = row.block, s.stageRun = row.stage_run,
    s.centroid = CASE WHEN row.centroid_z IS NULL THEN null
                      ELSE {point_expr("row.centroid_")} END
WITH s, row WHERE row.body_id IS NOT NULL AND row.body_id > 0
MATCH (b:Segment {{bodyId: row.body_id}})
OPTIONAL MATCH (s)-[p:PartOf]->(b) WHERE p.validTo IS NULL
FOREACH (_ IN CASE WHEN p IS NULL THEN [1] ELSE [] END |
  CREATE (s)-[:PartOf {{validFrom: $v, seenIn: $v}}]->(b))
SET p.seenIn = $v
"""

Q_MERGES = """
UNWIND $rows AS row
MATCH (a:Supervoxel {svId: row.sv_a}), (b:Supervoxel {svId: row.sv_b})
OPTIONAL MATCH (a)-[m:MergedWith {operationId: row.operation_id}]->(b) WHERE m.validTo IS NULL
FOREACH (_ IN CASE WHEN m IS NULL THEN [1] ELSE [] END |
  CREATE (a)-[:MergedWith {affinity: row.affinity, step: row.step, block: row.block,
                           stageRun: row.stage_run, operationId: row.operation_id,
                           validFrom: $v, seenIn: $v}]->(b))
SET m.seenIn = $v
"""

Q_FRESH_MERGES = """
UNWIND $rows AS row
MATCH (a:Supervoxel {svId: row.sv_a}), (b:Supervoxel {svId: row.sv_b})
CREATE (a)-[:MergedWith {affinity: row.affinity, step: row.step, block: row.block,
                         stageRun: row.stage_run, operationId: row.operation_id,
                         validFrom: $v, seenIn: $v}]->(b)
"""

Q_OPERATIONS = """
UNWIND $rows AS row
MERGE (o:Operation {operationId: row.operation_id})
  ON CREATE SET o.version = $v, o.timestamp = coalesce(row.timestamp, toString(datetime()))
SET o.kind = row.kind, o.user = row.user, o.params = row.params, o.stageRun = row.stage_run
FOREACH (_ IN CASE WHEN row.stage_run IS NULL THEN [] ELSE [1] END |
  MERGE (r:StageRun {stageRunId: row.stage_run})
  MERGE (o)-[:InStageRun]->(r))
WITH o, row
CALL (o, row) {
  UNWIND coalesce(row.created, []) AS cid
  MATCH (c:Segment {bodyId: cid})
  MERGE (o)-[:Created]->(c)
}
CALL (o, row) {
  UNWIND coalesce(row.retired, []) AS rid
  MATCH (r:Segment {bodyId: rid})
  MERGE (o)-[:Retired]->(r)
  WITH r
  UNWIND coalesce(row.created, []) AS cid
  MATCH (c:Segment {bodyId: cid})
  MERGE (r)-[:SupersededBy {operationId: o.operationId}]->(c)
}
"""

# Old bodies about to be retired -> new bodies that took one of their supervoxels.
Q_SUPERSEDE = """
MATCH (o:Segment) WHERE o.validTo IS NULL AND o.seenIn < $v
  AND NOT EXISTS { (:Operation)-[:Retired]->(o) }
MATCH (o)<-[p:PartOf]-(:Supervoxel)-[q:PartOf]->(n:Segment)
WHERE p.validTo IS NULL AND q.validFrom = $v AND n <> o
WITH DISTINCT o, n
MATCH (op:Operation {operationId: $op})
MERGE (o)-[:SupersededBy {operationId: $op}]->(n)
"""

Q_SWEEP_BODIES = """
MATCH (s:Segment) WHERE s.validTo IS NULL AND s.seenIn < $v
CALL (s) {
  SET s.validTo = $v
  REMOVE s:Neuron
  WITH s WHERE NOT EXISTS { (:Operation)-[:Retired]->(s) }
  MATCH (op:Operation {operationId: $op})
  MERGE (op)-[:Retired]->(s)
} IN TRANSACTIONS OF 10000 ROWS
"""

Q_SWEEP_NODES = """
MATCH (s:{label}) WHERE s.validTo IS NULL AND s.seenIn < $v
CALL (s) {{ SET s.validTo = $v }} IN TRANSACTIONS OF 20000 ROWS
"""

Q_SWEEP_RELS = """
MATCH ()-[e:{rel}]->() WHERE e.validTo IS NULL AND e.seenIn < $v
CALL (e) {{ SET e.validTo = $v }} IN TRANSACTIONS OF 20000 ROWS
"""

Q_CREATED = """
MATCH (s:Segment) WHERE s.validFrom = $v AND NOT EXISTS { (:Operation)-[:Created]->(s) }
CALL (s) {
  MATCH (op:Operation {operationId: $op})
  MERGE (op)-[:Created]->(s)
} IN TRANSACTIONS OF 10000 ROWS
"""

Q_RETIRED_IDS = """
CALL () { MATCH (s:Segment) WHERE s.validTo IS NOT NULL RETURN s.bodyId AS id
          UNION
          MATCH (s:Synapse) WHERE s.validTo IS NOT NULL RETURN s.synapseId AS id }
RETURN collect(DISTINCT id) AS ids
"""

Q_META = """
MERGE (m:Meta {dataset: $dataset})
  ON CREATE SET m.uuid = $uuid
// a re-load of older tables after an annotation keeps the newer version current
SET m.currentVersion = CASE WHEN coalesce(m.currentVersion, 0) > $v THEN m.currentVersion
                            ELSE $v END,
    m.voxelSize = $voxelSize, m.voxelUnits = 'nanometers',
    m.postHighAccuracyThreshold = $hi, m.postHPThreshold = $hp,
    m.synapseLevel = $synapseLevel, m.source = $source,
    m.lastDatabaseEdit = toString(datetime()),
    m.latestMutationId = CASE WHEN coalesce(m.latestMutationId, 0) > $v THEN m.latestMutationId
                              ELSE $v END,
    m.statusDefinitions = coalesce(m.statusDefinitions, '{}'),
    m.primaryRois = coalesce(m.primaryRois, []), m.superLevelRois = coalesce(m.superLevelRois, []),
    m.roiInfo = coalesce(m.roiInfo, '{}'), m.roiHierarchy = coalesce(m.roiHierarchy, '{}'),
    m.neuronProperties = coalesce(m.neuronProperties, '{}')
WITH m
CALL (m) {
  MATCH (s:Synapse) WHERE s.validTo IS NULL
  RETURN sum(CASE s.type WHEN 'pre' THEN 1 ELSE 0 END) AS pre,
         sum(CASE s.type WHEN 'post' THEN 1 ELSE 0 END) AS post
}
SET m.totalPreCount = pre, m.totalPostCount = post
"""


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What one load did. ``reloaded`` is True when the snapshot was already the
    current version (nothing changed)."""

    version: int
    reloaded: bool
    bodies: int
    synapses: int
    connections: int  # ConnectsTo: chemical connections (connected body pairs)
    supervoxels: int
    merges: int
    retired_bodies: int
    created_bodies: int
    seconds: float
    synapses_per_s: float
    phases: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds per step
    gap_junctions: int = 0  # GapJunction: electrical connections (cell pairs), imports only

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _rows(df: pl.DataFrame, batch: int):
    for i in range(0, df.height, batch):
        yield df.slice(i, batch).to_dicts()


def _write(store: GraphStore, query: str, df: pl.DataFrame, params: dict[str, Any],
           what: str, phases: dict[str, float] | None = None) -> None:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    with tqdm(total=df.height, desc=f"graph load: {what}", unit="row", disable=None,
              leave=False, dynamic_ncols=True) as bar:  # shown on a terminal only
        for rows in _rows(df, store.batch_size):
            store.write(query, {**params, "rows": rows})
            bar.update(len(rows))
    dt = time.perf_counter() - t0
    if phases is not None:
        phases[what] = round(phases.get(what, 0.0) + dt, 3)
    if df.height:
        log.info("loaded %d %s in %.1f s", df.height, what, dt)


def _refuse_revived_ids(store: GraphStore, snap: Snapshot) -> None:
    """Refuse, before anything is written, tables that bring back a body or synapse id
    retired in an earlier version: one node holds one validity interval, so a revived id
    would rewrite history (ids are minted, never reused)."""
    retired = set(store.read(Q_RETIRED_IDS).records()[0]["ids"])
    if not retired:
        return
    ids = set(snap.body_table()["body_id"].to_list())
    if snap.synapses.height:
        ids |= set(snap.synapses["synapse_id"].to_list())
    back = sorted(ids & retired)
    if back:
        raise GraphError(
            f"{len(back)} body/synapse id(s) retired in an earlier version reappear in "
            f"{snap.source} (e.g. {back[:10]}); ids are minted, never reused, so nothing was "
            "written: a re-run must mint new ids (the same body or synapse coming back after "
            "a different run in between is not supported yet)")


def choose_version(store: GraphStore, dataset: str, fingerprint: str) -> tuple[int, bool]:
    """(version to write, whether it is a re-load of the current one)."""
    # Compared with the newest *load* (versions made by annotations carry no fingerprint):
    # unchanged tables after an annotation are a re-load, not a new version.
    rows = store.read(
        "OPTIONAL MATCH (v:Version) WITH max(v.version) AS last "
        "OPTIONAL MATCH (l:Version) WHERE l.fingerprint IS NOT NULL "
        "WITH last, l ORDER BY l.version DESC LIMIT 1 "
        "RETURN last, l.version AS loaded, l.fingerprint AS fp, l.complete AS complete",
        {"d": dataset}).records()
    last = rows[0]["last"] if rows else None
    if last is None:
        return 1, False
    loaded, fp, complete = rows[0]["loaded"], rows[0]["fp"], rows[0]["complete"]
    if loaded is not None and fp == fingerprint:
        return loaded, bool(complete)
    if loaded is not None and not complete:
        raise GraphError(
            f"the load of version {loaded} was interrupted and these tables differ from it; "
            f"re-run that load first, or clear the graph (`cxgraph init-graph --clear`)"
        )
    return last + 1, False


def body_rows(snap: Snapshot, params: GraphParams) -> pl.DataFrame:
    """Bodies to write. ``:Neuron``: a body whose ``kind`` is given is one iff it is
    ``neuron`` (an imported muscle stays ``:Segment`` whatever its counts); otherwise
    neuPrint's rule (pre/post thresholds, or named/typed). ``props``: the extra
    columns of a neuron table, as a map."""
    b = snap.body_table()
    rule = ((pl.col("pre") >= params.neuron_min_pre) | (pl.col("post") >= params.neuron_min_post)
            | pl.col("name").is_not_null() | pl.col("type").is_not_null())
    neuron = pl.when(pl.col("kind").is_not_null()).then(pl.col("kind") == "neuron").otherwise(rule)
    props = (b["properties"].str.json_decode(infer_schema_length=None)
             if b["properties"].null_count() < b.height else pl.lit(None))
    return body_roi_info(b.with_columns(neuron.alias("neuron"), props.alias("props"))
                         .drop("properties"), body_roi_counts(snap))


def _synapse_roi_sides(snap: Snapshot, side: str) -> pl.DataFrame:
    """synapse_id, roi and the synapse's columns, for its ``side`` point's ROIs."""
    return snap.synapse_rois.filter(pl.col("side") == side).join(
        snap.synapses, on="synapse_id")


def body_roi_counts(snap: Snapshot) -> pl.DataFrame:
    """body_id, roi, pre, post, upstream, downstream: each body's synapse points in each
    declared ROI (as the body's own counts, per ROI)."""
    pre = _synapse_roi_sides(snap, "pre").group_by(
        pl.col("pre_body").alias("body_id"), "roi").agg(pl.len().cast(pl.Int64).alias("pre"))
    post = _synapse_roi_sides(snap, "post").group_by(
        pl.col("post_body").alias("body_id"), "roi").agg(pl.len().cast(pl.Int64).alias("post"))
    return pre.join(post, on=["body_id", "roi"], how="full", coalesce=True).with_columns(
        pl.col("pre").fill_null(0), pl.col("post").fill_null(0)).with_columns(
        pl.col("pre").alias("downstream"), pl.col("post").alias("upstream"))


def connection_roi_counts(snap: Snapshot, params: GraphParams) -> pl.DataFrame:
    """pre, post, roi, weight_hr, weight, weight_hp of each connection's synapses whose post
    point lies in each declared ROI (neuPrint assigns a connection's ROIs by the post side)."""
    conf = pl.col("confidence")
    return _synapse_roi_sides(snap, "post").group_by(
        pl.col("pre_body").alias("pre"), pl.col("post_body").alias("post"), "roi").agg(
        pl.len().cast(pl.Int64).alias("weight_hr"),
        (conf >= params.post_high_accuracy_threshold).sum().cast(pl.Int64).alias("weight"),
        (conf >= params.post_hp_threshold).sum().cast(pl.Int64).alias("weight_hp"))


def connection_rows(snap: Snapshot, params: GraphParams) -> pl.DataFrame:
    """One row per connected body pair and kind: weights (neuPrint's weight, weightHR,
    weightHP under the ``[graph]`` thresholds), ROI counts and the SynapseSet ids."""
    conns = snap.connection_table(params.post_high_accuracy_threshold,
                                  params.post_hp_threshold)
    return connection_roi_info(conns, connection_roi_counts(snap, params)).with_columns(
        pl.format("{}_{}_pre", "pre", "post").alias("pre_set"),
        pl.format("{}_{}_post", "pre", "post").alias("post_set"))


def synapse_rows(snap: Snapshot) -> pl.DataFrame:
    """The synapses with their SynapseSet ids and ``pre_rois``/``post_rois`` (declared)."""
    out = snap.synapses.with_columns(
        pl.format("{}_{}_pre", "pre_body", "post_body").alias("pre_set"),
        pl.format("{}_{}_post", "pre_body", "post_body").alias("post_set"),
    )
    for side in ("pre", "post"):
        rois = snap.synapse_rois.filter(pl.col("side") == side).group_by("synapse_id").agg(
            pl.col("roi").alias(f"{side}_rois"))
        out = out.join(rois, on="synapse_id", how="left")
    return out


def load_snapshot(store: GraphStore, snap: Snapshot, params: GraphParams | None = None,
                  note: str = "") -> LoadReport:
    """Write ``snap`` as a version of the graph (a new one unless it is unchanged).

    >>> report = load_snapshot(store, from_workspace(ws))   # doctest: +SKIP
    >>> report.version, report.reloaded                     # doctest: +SKIP
    (1, False)
    """
    params = params or GraphParams()
    t0 = time.perf_counter()
    store.apply_schema()
    phases: dict[str, float] = {}
    fp = snap.fingerprint()
    v, reload = choose_version(store, params.dataset, fp)
    fresh = v == 1 and not reload and not store.read(
        "MATCH (n) WHERE n:Segment OR n:Synapse OR n:Supervoxel OR n:Version "
        "RETURN count(n) > 0").rows[0][0]
    if not fresh:
        _refuse_revived_ids(store, snap)
    kind = {"pipeline": "agglomerate" if v == 1 else "rerun"}.get(snap.kind, snap.kind)
    op_id = f"v{v}:{kind}"
    log.info("loading %s as version %d%s", snap.source, v, " (re-load)" if reload else "")
    store.write(
        "MERGE (ver:Version {version: $v}) ON CREATE SET ver.createdAt = toString(datetime()), "
        "ver.complete = false SET ver.fingerprint = $fp, ver.source = $source, ver.note = $note, "
        "ver.kind = $kind "
        "WITH ver UNWIND $runs AS run MERGE (r:StageRun {stageRunId: run}) "
        "MERGE (ver)-[:FromStageRun]->(r)",
        {"v": v, "fp": fp, "source": snap.source, "note": note, "kind": snap.kind,
         "runs": snap.stage_runs()})
    # the version's own operation (explicit operations come from the snapshot)
    store.write(Q_OPERATIONS, {"v": v, "rows": [{
        "operation_id": op_id, "kind": kind, "user": None, "timestamp": None,
        "params": json.dumps({"source": snap.source, "fingerprint": fp}),
        "stage_run": (snap.stage_runs() or [None])[0] if snap.kind == "pipeline" else None,
        "created": [], "retired": []}]})

    # ROI booleans to set or clear: the volume, the declared ROIs and the last load's
    roi_parents = dict(snap.roi_parents)
    declared = list(dict.fromkeys([*roi_parents, *stored_roi_parents(store, params.dataset)]))
    bodies = body_rows(snap, params)
    _write(store, Q_BODIES, bodies, {"v": v, "rois": [VOLUME_ROI, *declared]}, "bodies", phases)
    syn = synapse_rows(snap)
    conns = connection_rows(snap, params)
    chem = conns.filter(pl.col("type").fill_null("chemical") == "chemical")
    _write(store, Q_FRESH_CONNECTIONS if fresh else Q_CONNECTIONS, chem,
           {"v": v, "synapseLevel": snap.synapse_level},
           "connections", phases)
    gap = conns.filter(pl.col("type") == "electrical")
    _write(store, Q_GAP_JUNCTIONS, gap, {"v": v}, "gap junctions", phases)
    if fresh:
        _write(store, Q_FRESH_SYNAPSES, syn, {"v": v}, "synapses", phases)
        _write(store, Q_FRESH_SUPERVOXELS, snap.supervoxels, {"v": v}, "supervoxels", phases)
    else:
        _write(store, Q_SYNAPSES, syn, {"v": v, "rois": declared}, "synapses", phases)
        _write(store, Q_MEMBERSHIP, syn.select("synapse_id", "pre_set", "post_set"),
               {"v": v}, "synapse memberships", phases)
        _write(store, Q_SUPERVOXELS, snap.supervoxels, {"v": v}, "supervoxels", phases)
    merges = snap.merges.with_columns(
        pl.concat_str([pl.lit("agglomerate:"), pl.col("stage_run").fill_null(f"v{v}")]).alias(
            "operation_id"))
    if merges.height:
        mops = merges.group_by("operation_id").agg(pl.col("stage_run").first())
        store.write(Q_OPERATIONS, {"v": v, "rows": [
            {"operation_id": r["operation_id"], "kind": "agglomerate", "user": None,
             "timestamp": None, "params": None, "stage_run": r["stage_run"],
             "created": [], "retired": []} for r in mops.to_dicts()]})
    _write(store, Q_FRESH_MERGES if fresh else Q_MERGES, merges, {"v": v}, "merges", phases)
    if snap.operations.height:
        _write(store, Q_OPERATIONS, snap.operations, {"v": v}, "operations", phases)

    t_sweep = time.perf_counter()
    retired = store.read("MATCH (s:Segment) WHERE s.validTo IS NULL AND s.seenIn < $v "
                         "RETURN count(s)", {"v": v}).rows[0][0]
    if v > 1:
        store.write(Q_SUPERSEDE, {"v": v, "op": op_id})
        store.run_in_transactions(Q_SWEEP_BODIES, {"v": v, "op": op_id})
        for label in ("Synapse", "Supervoxel"):
            store.run_in_transactions(Q_SWEEP_NODES.format(label=label), {"v": v})
        for rel in ("ConnectsTo", "GapJunction", "PartOf", "MergedWith", "Contains"):
            store.run_in_transactions(Q_SWEEP_RELS.format(rel=rel), {"v": v})
    store.run_in_transactions(Q_CREATED, {"v": v, "op": op_id})
    phases["sweep+created"] = round(time.perf_counter() - t_sweep, 3)
    created = store.read("MATCH (s:Segment {validFrom: $v}) RETURN count(s)", {"v": v}).rows[0][0]
    vx = snap.voxel_size
    store.write(Q_META, {"dataset": params.dataset, "uuid": str(uuid.uuid4()), "v": v,
                         "voxelSize": [vx[2], vx[1], vx[0]],  # neuPrint order x, y, z
                         "hi": params.post_high_accuracy_threshold,
                         "hp": params.post_hp_threshold, "synapseLevel": snap.synapse_level,
                         "source": snap.source})
    refresh_meta(store, params.dataset, roi_parents)
    store.write("MATCH (ver:Version {version: $v}) SET ver.complete = true", {"v": v})
    dt = time.perf_counter() - t0
    report = LoadReport(
        version=v, reloaded=reload, bodies=bodies.height, synapses=snap.synapses.height,
        connections=chem.height, gap_junctions=gap.height, supervoxels=snap.supervoxels.height,
        merges=snap.merges.height, retired_bodies=int(retired), created_bodies=int(created),
        seconds=round(dt, 3), synapses_per_s=round(snap.synapses.height / dt, 1) if dt else 0.0,
        phases=phases)
    log.info("version %d loaded in %.1f s: %s", v, dt, report.to_dict())
    return report
