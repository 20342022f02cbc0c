"""First load of a large graph through ``neo4j-admin database import full``.

The Bolt loader MERGEs row by row; for the first version of a big dataset the
offline importer is an order of magnitude faster. It writes the same model:
``write_import_files`` turns a ``Snapshot`` into tab-separated node and
relationship files with typed headers (``bodyId:long``, ``location:point``,
``:ID(Segment)``, ...), ``run_import`` runs the importer on a stopped server,
and ``bulk_load_workspace`` does stop → import → start → schema → the version
bookkeeping (``Version``, ``Operation``, ``Created``, ``Meta``) over Bolt.

Only a first load (version 1, replacing the database) goes this way; every
later version goes through ``loader.load_snapshot``, which continues the
intervals and ``seenIn`` stamps the import writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from cxgraph.errors import GraphError, Neo4jServerError
from cxgraph.graph.coords import point_csv_expr
from cxgraph.graph.loader import (
    Q_CREATED,
    Q_META,
    Q_OPERATIONS,
    LoadReport,
    body_rows,
    connection_rows,
    synapse_rows,
)
from cxgraph.graph.meta import VOLUME_ROI, refresh_meta
from cxgraph.graph.params import GraphParams
from cxgraph.graph.snapshot import Snapshot
from cxgraph.graph.store import GraphStore

log = logging.getLogger(__name__)

VERSION = 1  # the bulk path always writes the first version


@dataclasses.dataclass(frozen=True)
class ImportFiles:
    directory: Path
    nodes: list[Path]
    relationships: list[Path]
    rows: dict[str, int]  # rows per file stem


def _write(df: pl.DataFrame, path: Path) -> Path:
    df.write_csv(path, separator="\t", quote_style="never", null_value="")
    return path


def write_import_files(snap: Snapshot, directory: Path,
                       params: GraphParams | None = None) -> ImportFiles:
    """Node and relationship files for ``neo4j-admin database import`` (tab-separated)."""
    params = params or GraphParams()
    if not snap.synapse_level:
        raise GraphError("the bulk path loads synapse-level data; import an edge list with "
                         "`cxgraph import-connectome` (Bolt) instead")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    v = VERSION
    files_n, files_r = [], []
    rows: dict[str, int] = {}

    b = body_rows(snap, params)
    declared = [name for name, _ in snap.roi_parents]

    def flags(col: str) -> list[pl.Expr]:  # one boolean column per declared ROI
        return [pl.when(pl.col(col).list.contains(name)).then(pl.lit("true"))
                .alias(f"{name}:boolean") for name in declared]
    seg = b.select(
        pl.col("body_id").alias(":ID(Segment)"), pl.col("body_id").alias("bodyId:long"),
        pl.col("size").alias("size:long"), pl.col("pre").alias("pre:long"),
        pl.col("post").alias("post:long"), pl.col("upstream").alias("upstream:long"),
        pl.col("downstream").alias("downstream:long"),
        (pl.col("upstream") + pl.col("downstream")).alias("synweight:long"),
        pl.col("status").alias("status"), pl.col("status").alias("statusLabel"),
        pl.col("type").alias("type"),
        pl.col("instance").alias("instance"), pl.col("name").alias("name"),
        pl.col("stage_run").alias("stageRun"), pl.col("block").alias("block:long"),
        pl.col("roi_info").alias("roiInfo"),
        pl.when(pl.col("in_volume")).then(pl.lit("true")).alias(f"{VOLUME_ROI}:boolean"),
        *flags("rois"), pl.lit(v).alias("validFrom:long"), pl.lit(v).alias("seenIn:long"),
        pl.when(pl.col("neuron")).then(pl.lit("Segment;Neuron")).otherwise(pl.lit("Segment"))
        .alias(":LABEL"))
    files_n.append(_write(seg, d / "segments.tsv"))

    s = synapse_rows(snap)
    common = [pl.col("confidence").alias("confidence:double"),
              pl.col("stage_run").alias("stageRun"), pl.col("block").alias("block:long"),
              pl.lit(v).alias("validFrom:long"), pl.lit(v).alias("seenIn:long"),
              pl.lit("true").alias(f"{VOLUME_ROI}:boolean"), pl.lit("Synapse").alias(":LABEL")]
    pre = s.select((pl.col("synapse_id") * 2).alias(":ID(Synapse)"),
                   pl.col("synapse_id").alias("synapseId:long"), pl.lit("pre").alias("type"),
                   point_csv_expr("pre_").alias("location:point"),
                   pl.col("pre_body").alias("bodyId:long"),
                   pl.col("pre_sv").alias("supervoxelId:long"), *common, *flags("pre_rois"))
    post = s.select((pl.col("synapse_id") * 2 + 1).alias(":ID(Synapse)"),
                    pl.col("synapse_id").alias("synapseId:long"), pl.lit("post").alias("type"),
                    point_csv_expr("post_").alias("location:point"),
                    pl.col("post_body").alias("bodyId:long"),
                    pl.col("post_sv").alias("supervoxelId:long"), *common,
                    *flags("post_rois"))
    files_n.append(_write(pl.concat([pre, post]), d / "synapses.tsv"))

    conns = connection_rows(snap, params).with_row_index("k")
    conns = conns.with_columns((pl.col("k").cast(pl.Int64) * 2).alias("pre_set_id"),
                               (pl.col("k").cast(pl.Int64) * 2 + 1).alias("post_set_id"))
    sets = pl.concat([
        conns.select(pl.col("pre_set_id").alias(":ID(SynapseSet)"),
                     pl.format("{}_{}_pre", "pre", "post").alias("synapseSetId")),
        conns.select(pl.col("post_set_id").alias(":ID(SynapseSet)"),
                     pl.format("{}_{}_post", "pre", "post").alias("synapseSetId")),
    ]).with_columns(pl.lit("SynapseSet").alias(":LABEL"))
    files_n.append(_write(sets, d / "synapse_sets.tsv"))

    files_r.append(_write(conns.select(
        pl.col("pre").alias(":START_ID(Segment)"), pl.col("post").alias(":END_ID(Segment)"),
        pl.col("weight").alias("weight:long"), pl.col("weight_hr").alias("weightHR:long"),
        pl.col("weight_hp").alias("weightHP:long"), pl.col("roi_info").alias("roiInfo"),
        pl.lit(v).alias("validFrom:long"),
        pl.lit(v).alias("seenIn:long"), pl.lit("ConnectsTo").alias(":TYPE")),
        d / "connects_to.tsv"))
    files_r.append(_write(pl.concat([
        conns.select(pl.col("pre").alias(":START_ID(Segment)"),
                     pl.col("pre_set_id").alias(":END_ID(SynapseSet)")),
        conns.select(pl.col("post").alias(":START_ID(Segment)"),
                     pl.col("post_set_id").alias(":END_ID(SynapseSet)")),
    ]).with_columns(pl.lit("Contains").alias(":TYPE")), d / "segment_contains.tsv"))
    files_r.append(_write(conns.select(
        pl.col("pre_set_id").alias(":START_ID(SynapseSet)"),
        pl.col("post_set_id").alias(":END_ID(SynapseSet)"),
        pl.lit("ConnectsTo").alias(":TYPE")), d / "set_connects_to.tsv"))

    sk = s.join(conns.select("pre", "post", "pre_set_id", "post_set_id"),
                left_on=["pre_body", "post_body"], right_on=["pre", "post"])
    member = [pl.lit(v).alias("validFrom:long"), pl.lit(v).alias("seenIn:long"),
              pl.lit("Contains").alias(":TYPE")]
    files_r.append(_write(pl.concat([
        sk.select(pl.col("pre_set_id").alias(":START_ID(SynapseSet)"),
                  (pl.col("synapse_id") * 2).alias(":END_ID(Synapse)"), *member),
        sk.select(pl.col("post_set_id").alias(":START_ID(SynapseSet)"),
                  (pl.col("synapse_id") * 2 + 1).alias(":END_ID(Synapse)"), *member),
    ]), d / "set_contains.tsv"))
    files_r.append(_write(s.select(
        (pl.col("synapse_id") * 2).alias(":START_ID(Synapse)"),
        (pl.col("synapse_id") * 2 + 1).alias(":END_ID(Synapse)"),
        pl.lit("SynapsesTo").alias(":TYPE")), d / "synapses_to.tsv"))

    if snap.supervoxels.height:
        sv = snap.supervoxels
        files_n.append(_write(sv.select(
            pl.col("sv_id").alias(":ID(Supervoxel)"), pl.col("sv_id").alias("svId:long"),
            pl.col("size").alias("size:long"), pl.col("block").alias("block:long"),
            pl.col("stage_run").alias("stageRun"),
            pl.when(pl.col("centroid_z").is_null()).then(None).otherwise(
                point_csv_expr("centroid_")).alias("centroid:point"),
            pl.lit(v).alias("validFrom:long"), pl.lit(v).alias("seenIn:long"),
            pl.lit("Supervoxel").alias(":LABEL")), d / "supervoxels.tsv"))
        files_r.append(_write(sv.filter(pl.col("body_id") > 0).select(
            pl.col("sv_id").alias(":START_ID(Supervoxel)"),
            pl.col("body_id").alias(":END_ID(Segment)"),
            pl.lit(v).alias("validFrom:long"), pl.lit(v).alias("seenIn:long"),
            pl.lit("PartOf").alias(":TYPE")), d / "part_of.tsv"))
    if snap.merges.height:
        files_r.append(_write(snap.merges.select(
            pl.col("sv_a").alias(":START_ID(Supervoxel)"),
            pl.col("sv_b").alias(":END_ID(Supervoxel)"),
            pl.col("affinity").alias("affinity:double"), pl.col("step").alias("step:long"),
            pl.col("block").alias("block:long"), pl.col("stage_run").alias("stageRun"),
            pl.concat_str([pl.lit("agglomerate:"), pl.col("stage_run").fill_null(f"v{v}")])
            .alias("operationId"),
            pl.lit(v).alias("validFrom:long"), pl.lit(v).alias("seenIn:long"),
            pl.lit("MergedWith").alias(":TYPE")), d / "merged_with.tsv"))
    for p in files_n + files_r:
        rows[p.stem] = sum(1 for _ in open(p)) - 1
    return ImportFiles(d, files_n, files_r, rows)


def run_import(files: ImportFiles, neo4j_home: Path, conf_dir: Path, java: Path,
               database: str = "neo4j") -> float:
    """Run ``neo4j-admin database import full`` (the server must be stopped); seconds."""
    cmd = [str(java), "-cp", f"{neo4j_home}/lib/*", "org.neo4j.cli.AdminTool",
           "database", "import", "full",
           *[f"--nodes={p}" for p in files.nodes],
           *[f"--relationships={p}" for p in files.relationships],
           "--delimiter=TAB", "--array-delimiter=;", "--id-type=INTEGER",
           "--overwrite-destination=true", "--skip-bad-relationships=false",
           f"--report-file={files.directory / 'import.report'}", database]
    env = {**os.environ, "NEO4J_HOME": str(neo4j_home), "NEO4J_CONF": str(conf_dir)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=files.directory,
                          umask=0o077)  # the store it writes is private to its owner
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise GraphError(f"neo4j-admin import failed (exit {proc.returncode}):\n{tail}")
    dt = time.perf_counter() - t0
    log.info("neo4j-admin import finished in %.1f s", dt)
    return dt


def finish_first_version(store: GraphStore, snap: Snapshot, params: GraphParams) -> None:
    """The version bookkeeping the importer does not write (small, over Bolt)."""
    v = VERSION
    op_id = f"v{v}:agglomerate"
    store.apply_schema()
    store.write(
        "MERGE (ver:Version {version: $v}) SET ver.createdAt = toString(datetime()), "
        "ver.fingerprint = $fp, ver.source = $source, ver.kind = $kind, ver.note = 'bulk import' "
        "WITH ver UNWIND $runs AS run MERGE (r:StageRun {stageRunId: run}) "
        "MERGE (ver)-[:FromStageRun]->(r)",
        {"v": v, "fp": snap.fingerprint(), "source": snap.source, "kind": snap.kind,
         "runs": snap.stage_runs()})
    ops = [{"operation_id": op_id, "kind": "agglomerate", "user": None, "timestamp": None,
            "params": json.dumps({"source": snap.source, "bulk": True}),
            "stage_run": (snap.stage_runs() or [None])[0], "created": [], "retired": []}]
    if snap.merges.height:
        for run in snap.merges["stage_run"].unique().to_list():
            ops.append({"operation_id": f"agglomerate:{run or f'v{v}'}", "kind": "agglomerate",
                        "user": None, "timestamp": None, "params": None, "stage_run": run,
                        "created": [], "retired": []})
    store.write(Q_OPERATIONS, {"v": v, "rows": ops})
    store.run_in_transactions(Q_CREATED, {"v": v, "op": op_id})
    vx = snap.voxel_size
    store.write(Q_META, {"dataset": params.dataset, "uuid": str(uuid.uuid4()), "v": v,
                         "voxelSize": [vx[2], vx[1], vx[0]],
                         "hi": params.post_high_accuracy_threshold,
                         "hp": params.post_hp_threshold, "synapseLevel": True,
                         "source": snap.source})
    refresh_meta(store, params.dataset, dict(snap.roi_parents))
    store.write("MATCH (ver:Version {version: $v}) SET ver.complete = true", {"v": v})


def bulk_load_workspace(ws: Any, snap: Snapshot, params: GraphParams | None = None,
                        keep_files: bool = False) -> LoadReport:
    """Stop the workspace's managed server, import ``snap`` as version 1, start it again."""
    from cxgraph import neo4j_server

    params = params or GraphParams()
    if neo4j_server.external_connection(ws.config["neo4j"]):
        raise Neo4jServerError(
            "the bulk path needs the project-managed server (it stops the server and writes "
            "its store); unset NEO4J_URI, or load over Bolt without --bulk")
    server = neo4j_server.managed_server(ws)
    t0 = time.perf_counter()
    files = write_import_files(snap, ws.root / "neo4j" / "import", params)
    t_files = time.perf_counter() - t0
    home = neo4j_server.install(ws.config["neo4j"].version)
    java, _ = neo4j_server.find_java()
    server.start()  # writes conf/ and the password on a first use
    t1 = time.perf_counter()
    server.stop()
    t_stop = time.perf_counter() - t1
    t_import = run_import(files, home, server.dir / "conf", java)
    t1 = time.perf_counter()
    conn = server.start()
    t_start = time.perf_counter() - t1
    t1 = time.perf_counter()
    with GraphStore(conn, batch_size=params_batch(ws)) as store:
        finish_first_version(store, snap, params)
    t_finish = time.perf_counter() - t1
    if not keep_files:
        for p in files.nodes + files.relationships:
            p.unlink(missing_ok=True)
    dt = time.perf_counter() - t0
    log.info("bulk load: files %.1f s, import %.1f s, total %.1f s", t_files, t_import, dt)
    b = snap.body_table()
    return LoadReport(version=VERSION, reloaded=False, bodies=b.height,
                      synapses=snap.synapses.height, connections=files.rows["connects_to"],
                      supervoxels=snap.supervoxels.height, merges=snap.merges.height,
                      retired_bodies=0, created_bodies=b.height, seconds=round(dt, 3),
                      synapses_per_s=round(snap.synapses.height / dt, 1),
                      phases={"write_files": round(t_files, 3), "stop_server": round(t_stop, 3),
                              "neo4j_admin_import": round(t_import, 3),
                              "start_server": round(t_start, 3),
                              "schema_indexes_and_version": round(t_finish, 3)})


def params_batch(ws: Any) -> int:
    return int(ws.config["neo4j"].batch_size)
