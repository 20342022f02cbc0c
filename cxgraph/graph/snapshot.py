"""A ``Snapshot``: one version's worth of tables, normalised, ready to become a graph.

Sources (each returns a ``Snapshot``):

- ``from_workspace(ws)`` — the pipeline's tables in ``WS/tables/`` (contract
  below and in docs/graph-schema.md);
- ``from_ground_truth(dir)`` — the synthetic microscope's ``DIR/gt/``;
- ``cxgraph.graph.import_connectome.snapshot_from_edge_list`` — a published
  connectome as an edge list and a neuron table.

Normalised columns (coordinates in voxels, (z, y, x) as everywhere in cxgraph):

- ``synapses``: synapse_id, pre_body, post_body, pre_sv, post_sv, pre_z, pre_y,
  pre_x, post_z, post_y, post_x, confidence, block, stage_run. One row is one
  pre→post pair; ``synapse_id`` is unique per row.
- ``bodies``: body_id, size, status, type, instance, name, stage_run, block, and for
  imports kind (neuron | muscle | other), class, properties (a JSON object of
  the neuron table's extra columns).
- ``supervoxels``: sv_id, body_id, size, block, stage_run, centroid_z/y/x.
- ``merges``: sv_a, sv_b, affinity, step, block, stage_run (agglomeration history).
- ``operations``: operation_id, kind, user, timestamp, params, stage_run,
  created (list of body ids), retired (list of body ids) — explicit edits.
- ``edges``: pre, post, weight, type — only for connectomes without synapses.
- ``synapse_rois``: synapse_id, side (pre | post), roi — the declared ROIs each synapse
  point lies in (``cxgraph.graph.rois``), with ``roi_parents`` (name, parent) in
  declaration order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cxgraph.errors import InputDataError
from cxgraph.graph.rois import SYNAPSE_ROI_COLUMNS

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # Neo4j integers are signed 64-bit

SYNAPSE_COLUMNS: dict[str, Any] = {
    "synapse_id": pl.Int64, "pre_body": pl.Int64, "post_body": pl.Int64,
    "pre_sv": pl.Int64, "post_sv": pl.Int64,
    "pre_z": pl.Float64, "pre_y": pl.Float64, "pre_x": pl.Float64,
    "post_z": pl.Float64, "post_y": pl.Float64, "post_x": pl.Float64,
    "confidence": pl.Float64, "block": pl.Int64, "stage_run": pl.Utf8,
}
BODY_COLUMNS: dict[str, Any] = {
    "body_id": pl.Int64, "size": pl.Int64, "status": pl.Utf8, "type": pl.Utf8,
    "instance": pl.Utf8, "name": pl.Utf8, "stage_run": pl.Utf8, "block": pl.Int64,
    "kind": pl.Utf8, "class": pl.Utf8, "properties": pl.Utf8,
}
IMPORT_BODY_COLUMNS = ("kind", "class", "properties")  # only a neuron table fills them
SUPERVOXEL_COLUMNS: dict[str, Any] = {
    "sv_id": pl.Int64, "body_id": pl.Int64, "size": pl.Int64, "block": pl.Int64,
    "stage_run": pl.Utf8, "centroid_z": pl.Float64, "centroid_y": pl.Float64,
    "centroid_x": pl.Float64,
}
MERGE_COLUMNS: dict[str, Any] = {
    "sv_a": pl.Int64, "sv_b": pl.Int64, "affinity": pl.Float64, "step": pl.Int64,
    "block": pl.Int64, "stage_run": pl.Utf8,
}
OPERATION_COLUMNS: dict[str, Any] = {
    "operation_id": pl.Utf8, "kind": pl.Utf8, "user": pl.Utf8, "timestamp": pl.Utf8,
    "params": pl.Utf8, "stage_run": pl.Utf8,
    "created": pl.List(pl.Int64), "retired": pl.List(pl.Int64),
}
EDGE_COLUMNS: dict[str, Any] = {"pre": pl.Int64, "post": pl.Int64, "weight": pl.Int64,
                                "type": pl.Utf8}

REQUIRED = {
    "synapses": ("synapse_id", "pre_body", "post_body", "pre_z", "pre_y", "pre_x",
                 "post_z", "post_y", "post_x"),
    "bodies": ("body_id",),
    "supervoxels": ("sv_id", "body_id"),
    "merges": ("sv_a", "sv_b", "affinity"),
    "operations": ("operation_id", "kind"),
    "edges": ("pre", "post", "weight"),
}
ALIASES = {  # other spellings accepted on input
    "synapses": {"pre_id": "pre_body", "post_id": "post_body", "pre_supervoxel": "pre_sv",
                 "post_supervoxel": "post_sv"},
    "supervoxels": {"supervoxel_id": "sv_id", "body": "body_id"},
    "merges": {"a": "sv_a", "b": "sv_b"},
    "edges": {"source": "pre", "target": "post"},
    "bodies": {"id": "body_id"},
}
SCHEMAS = {"synapses": SYNAPSE_COLUMNS, "bodies": BODY_COLUMNS,
           "supervoxels": SUPERVOXEL_COLUMNS, "merges": MERGE_COLUMNS,
           "operations": OPERATION_COLUMNS, "edges": EDGE_COLUMNS}


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One version of the graph as tables. Build with the ``from_*`` functions."""

    kind: str  # pipeline | ground-truth | import
    source: str  # where it came from (path), for Meta and Version
    synapses: pl.DataFrame
    bodies: pl.DataFrame
    supervoxels: pl.DataFrame
    merges: pl.DataFrame
    operations: pl.DataFrame
    edges: pl.DataFrame
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)  # nm, (z, y, x)
    skipped_synapses: int = 0  # rows dropped because a body was unassigned (0/null)
    synapse_rois: pl.DataFrame = dataclasses.field(
        default_factory=lambda: pl.DataFrame(schema=SYNAPSE_ROI_COLUMNS))
    roi_parents: tuple[tuple[str, str | None], ...] = ()

    @property
    def synapse_level(self) -> bool:
        """True when connections come from synapses, False for an edge-list import."""
        return self.edges.height == 0

    def fingerprint(self) -> str:
        """sha256 over the content of every table (row hashes, in row order)."""
        h = hashlib.sha256(self.kind.encode())
        for name in ("synapses", "bodies", "supervoxels", "merges", "operations", "edges"):
            df: pl.DataFrame = getattr(self, name)
            if name == "bodies":  # empty import-only columns: same fingerprint as before them
                df = df.drop([c for c in IMPORT_BODY_COLUMNS if df[c].null_count() == df.height])
            h.update(f"{name}:{df.height}:{','.join(df.columns)}".encode())
            if df.height:
                h.update(df.hash_rows(seed=0).to_numpy().tobytes())
        if self.roi_parents:  # no ROIs declared: the fingerprint as before ROIs existed
            h.update(repr(self.roi_parents).encode())
            h.update(self.synapse_rois.sort("synapse_id", "side", "roi").hash_rows(seed=0)
                     .to_numpy().tobytes())
        return h.hexdigest()

    def stage_runs(self) -> list[str]:
        runs: set[str] = set()
        for name in ("synapses", "bodies", "supervoxels", "merges", "operations"):
            df: pl.DataFrame = getattr(self, name)
            if "stage_run" in df.columns and df.height:
                runs |= set(df["stage_run"].drop_nulls().unique().to_list())
        return sorted(runs)

    def body_table(self) -> pl.DataFrame:
        """Every body with its synapse counts: body_id, size, pre, post, downstream, ... .

        Bodies come from ``bodies``, plus any id named by a synapse, supervoxel
        or edge. ``pre``/``post`` count this snapshot's synapse rows. For an edge
        list (no synapses), ``downstream``/``upstream`` sum the chemical edge
        weights and ``pre``/``post`` equal them: ``post`` is exactly neuPrint's
        (= upstream), ``pre`` is an upper bound of it (a polyadic release site
        counts once per partner; the list cannot tell). Gap junctions count in none.
        """
        ids = [self.bodies.select("body_id")]
        if self.synapses.height:
            ids += [self.synapses.select(pl.col("pre_body").alias("body_id")),
                    self.synapses.select(pl.col("post_body").alias("body_id"))]
        if self.supervoxels.height:
            ids.append(self.supervoxels.select("body_id").drop_nulls())
        if self.edges.height:
            ids += [self.edges.select(pl.col("pre").alias("body_id")),
                    self.edges.select(pl.col("post").alias("body_id"))]
        all_ids = pl.concat(ids).unique().filter(pl.col("body_id") > 0)
        out = all_ids.join(self.bodies, on="body_id", how="left")
        if self.supervoxels.height and out["size"].null_count():
            sv_size = self.supervoxels.group_by("body_id").agg(
                pl.col("size").sum().alias("sv_size"))
            out = out.join(sv_size, on="body_id", how="left").with_columns(
                pl.coalesce("size", "sv_size").alias("size")).drop("sv_size")
        if self.synapse_level:
            pre = self.synapses.group_by("pre_body").agg(pl.len().alias("pre")).rename(
                {"pre_body": "body_id"})
            post = self.synapses.group_by("post_body").agg(pl.len().alias("post")).rename(
                {"post_body": "body_id"})
            out = out.join(pre, on="body_id", how="left").join(post, on="body_id", how="left")
            out = out.with_columns(pl.col("pre").fill_null(0), pl.col("post").fill_null(0))
            out = out.with_columns(pl.col("pre").alias("downstream"),
                                   pl.col("post").alias("upstream"))
        else:
            chem = self.edges.filter(~is_electrical(pl.col("type")))
            down = chem.group_by("pre").agg(pl.col("weight").sum().alias("downstream"))
            up = chem.group_by("post").agg(pl.col("weight").sum().alias("upstream"))
            out = out.join(down.rename({"pre": "body_id"}), on="body_id", how="left").join(
                up.rename({"post": "body_id"}), on="body_id", how="left")
            out = out.with_columns(pl.col("downstream").fill_null(0).cast(pl.Int64),
                                   pl.col("upstream").fill_null(0).cast(pl.Int64))
            out = out.with_columns(pl.col("downstream").alias("pre"),
                                   pl.col("upstream").alias("post"))
        return out.sort("body_id")

    def connection_table(self, high_accuracy: float = 0.0,
                         high_precision: float | None = None) -> pl.DataFrame:
        """pre, post, weight, weight_hr, weight_hp, type: one row per connected body pair.

        From synapses: ``weight_hr`` counts all, ``weight`` those with
        confidence >= ``high_accuracy``, ``weight_hp`` those >= ``high_precision``
        (default ``high_accuracy``) (neuPrint's weight / weightHR / weightHP). From an
        edge list: all three are the listed weight (summed over repeated pairs), one
        row per pair and type (``chemical`` or ``electrical``; electrical pairs
        come once per cell pair from ``snapshot_from_edge_list``).
        """
        hp = high_accuracy if high_precision is None else high_precision
        if self.synapse_level:
            return self.synapses.group_by("pre_body", "post_body").agg(
                pl.len().alias("weight_hr"),
                (pl.col("confidence") >= high_accuracy).sum().cast(pl.Int64).alias("weight"),
                (pl.col("confidence") >= hp).sum().cast(pl.Int64).alias("weight_hp"),
            ).rename({"pre_body": "pre", "post_body": "post"}).with_columns(
                pl.lit(None, pl.Utf8).alias("type")).sort("pre", "post")
        kind = pl.when(is_electrical(pl.col("type"))).then(pl.lit("electrical")).otherwise(
            pl.lit("chemical"))
        return self.edges.with_columns(kind.alias("type")).group_by("pre", "post", "type").agg(
            pl.col("weight").sum().alias("weight"),
        ).with_columns(pl.col("weight").alias("weight_hr"),
                       pl.col("weight").alias("weight_hp")).sort("pre", "post", "type")


ELECTRICAL = ("electrical", "gap", "gapjunction", "gap junction", "gap_junction", "gj", "ej")


def is_electrical(col: pl.Expr) -> pl.Expr:
    """True where an edge type names an electrical synapse (gap junction)."""
    return col.fill_null("").str.to_lowercase().str.strip_chars().is_in(list(ELECTRICAL))


# --- normalisation ---------------------------------------------------------------


def normalise(name: str, df: pl.DataFrame | None, where: str) -> pl.DataFrame:
    """Rename aliases, check required columns, add missing optional ones as nulls, cast."""
    schema = SCHEMAS[name]
    if df is None:
        return pl.DataFrame(schema=schema)
    df = df.rename({a: c for a, c in ALIASES.get(name, {}).items()
                    if a in df.columns and c not in df.columns})
    missing = [c for c in REQUIRED[name] if c not in df.columns]
    if missing:
        raise InputDataError(
            f"{where}: table {name!r} lacks column(s) {missing}; it has {df.columns}. "
            f"Expected {list(REQUIRED[name])} (see docs/graph-schema.md)"
        )
    exprs = [pl.col(c).cast(dtype, strict=True) if c in df.columns
             else pl.lit(None, dtype).alias(c) for c, dtype in schema.items()]
    try:
        out = df.select(exprs)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as e:
        raise InputDataError(
            f"{where}: a column of table {name!r} has the wrong type ({e}); "
            f"expected {dict(schema)}"
        ) from e
    for c, dtype in schema.items():
        if dtype == pl.Int64 and c in df.columns and out[c].drop_nulls().len():
            if int(out[c].drop_nulls().min()) < 0:  # wrapped uint64 >= 2^63
                raise InputDataError(f"{where}: {name}.{c} has ids >= 2^63 or negative; "
                                     "Neo4j stores signed 64-bit integers")
    return out


def make_snapshot(kind: str, source: str, *, synapses: pl.DataFrame | None = None,
                  bodies: pl.DataFrame | None = None, supervoxels: pl.DataFrame | None = None,
                  merges: pl.DataFrame | None = None, operations: pl.DataFrame | None = None,
                  edges: pl.DataFrame | None = None,
                  voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0),
                  synapse_rois: pl.DataFrame | None = None,
                  roi_parents: dict[str, str | None] | None = None) -> Snapshot:
    """Normalise and validate the tables of one version."""
    syn = normalise("synapses", synapses, source)
    syn = syn.with_columns(pl.col("confidence").fill_null(1.0))
    assigned = (pl.col("pre_body").fill_null(0) > 0) & (pl.col("post_body").fill_null(0) > 0)
    skipped = syn.height - syn.filter(assigned).height
    if skipped:
        log.warning("%s: %d synapse(s) without a pre or post body are not loaded", source, skipped)
    syn = syn.filter(assigned)
    if syn.height and syn["synapse_id"].n_unique() != syn.height:
        dup = syn.filter(pl.col("synapse_id").is_duplicated())["synapse_id"].head(5).to_list()
        raise InputDataError(
            f"{source}: synapse_id must be unique per (pre, post) row; repeated ids e.g. {dup}. "
            "Give each partner of a polyadic synapse its own id"
        )
    bod = normalise("bodies", bodies, source)
    if bod.height and bod["body_id"].n_unique() != bod.height:
        raise InputDataError(f"{source}: bodies.body_id repeats")
    sv = normalise("supervoxels", supervoxels, source)
    if sv.height and sv["sv_id"].n_unique() != sv.height:
        raise InputDataError(f"{source}: supervoxels.sv_id repeats")
    mg = normalise("merges", merges, source)
    if mg.height and mg["step"].null_count():
        mg = mg.with_columns(pl.int_range(0, mg.height, dtype=pl.Int64).alias("step"))
    ops = normalise("operations", operations, source)
    ed = normalise("edges", edges, source).filter(pl.col("weight") > 0)
    if ed.height and syn.height:
        raise InputDataError(f"{source}: give synapses or an edge list, not both")
    srois = (pl.DataFrame(schema=SYNAPSE_ROI_COLUMNS) if synapse_rois is None else
             synapse_rois.cast(SYNAPSE_ROI_COLUMNS).join(syn.select("synapse_id"),  # type: ignore[arg-type]
                                                         on="synapse_id", how="semi"))
    return Snapshot(kind, source, syn, bod, sv, mg, ops, ed,
                    tuple(float(v) for v in voxel_size), skipped,  # type: ignore[arg-type]
                    srois, tuple((roi_parents or {}).items()))


# --- sources ---------------------------------------------------------------------------


def _read(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.exists() else None


def from_workspace(ws: Any) -> Snapshot:
    """The pipeline tables of a workspace (``tables/*.parquet``).

    Used: ``synapses`` (required), ``supervoxels``, ``agglomeration`` (merge
    history), ``bodies``, ``operations``; ``connections`` is not loaded but
    compared by ``cxgraph check``. Voxel size from the ``segmentation`` (or
    ``raw``) array's attributes when present. ROIs declared in ``WS/rois.json``
    (``cxgraph roi add``) give ``synapse_rois``.
    """
    from cxgraph.graph.rois import parents, read_rois, synapse_rois

    t = Path(ws.tables_dir)
    syn = _read(t / "synapses.parquet")
    if syn is None:
        raise InputDataError(
            f"{t}/synapses.parquet not found: run the synapse stage first, or load the "
            "synthetic microscope's ground truth with `cxgraph load --ground-truth DIR`"
        )
    voxel_size = (1.0, 1.0, 1.0)
    for name in ("segmentation", "supervoxels", "raw"):
        if ws.has_array(name):
            voxel_size = tuple(ws.array(name).attrs.get("voxel_size", voxel_size))
            break
    merges = _read(t / "agglomeration.parquet")
    if merges is not None and "merged" in merges.columns:  # the forest beyond the cut: not
        merges = merges.filter(pl.col("merged"))  # merges of these bodies
    supervoxels, bodies = _read(t / "supervoxels.parquet"), _read(t / "bodies.parquet")
    operations = _read(t / "operations.parquet")
    supervoxels, bodies = _apply_merges(supervoxels, bodies, operations)
    rois = read_rois(ws.root)
    return make_snapshot(
        "pipeline", str(ws.root), synapses=syn, bodies=bodies, supervoxels=supervoxels,
        merges=merges, operations=operations, voxel_size=voxel_size,  # type: ignore[arg-type]
        synapse_rois=synapse_rois(ws, rois, syn) if rois else None, roi_parents=parents(rois),
    )


def _apply_merges(supervoxels: pl.DataFrame | None, bodies: pl.DataFrame | None,
                  operations: pl.DataFrame | None):
    """Supervoxels and bodies after the ``merge`` operations (retired -> created)."""
    if operations is None or supervoxels is None or not operations.height:
        return supervoxels, bodies
    ops = operations.filter(pl.col("kind") == "merge")
    new = {old: row["created"][0] for row in ops.iter_rows(named=True)
           for old in row["retired"] if row["created"]}
    if not new:
        return supervoxels, bodies
    supervoxels = supervoxels.with_columns(
        pl.col("body_id").replace(new).alias("body_id"))
    if bodies is not None:
        merged = bodies.with_columns(pl.col("body_id").replace(new)).group_by(
            "body_id", maintain_order=True).agg(
            [pl.col(c).sum() for c in ("size", "supervoxels") if c in bodies.columns]
            + [pl.col(c).first() for c in bodies.columns
               if c not in ("body_id", "size", "supervoxels")])
        bodies = merged.select(bodies.columns)
    return supervoxels, bodies


def from_ground_truth(directory: Path | str) -> Snapshot:
    """The synthetic microscope's ground truth: ``DIR/gt/synapses.parquet`` and, for
    body sizes, ``DIR/gt/labels.zarr`` (true body id per voxel, 0 = background)."""
    gt = Path(directory) / "gt"
    syn = _read(gt / "synapses.parquet")
    if syn is None:
        raise InputDataError(f"{gt}/synapses.parquet not found; is {directory} a phantom output?")
    bodies = None
    voxel_size = (1.0, 1.0, 1.0)
    labels = gt / "labels.zarr"
    if labels.exists():
        bodies, voxel_size = _label_sizes(labels)
    return make_snapshot("ground-truth", str(Path(directory).resolve()), synapses=syn,
                         bodies=bodies, voxel_size=voxel_size)


def _label_sizes(path: Path) -> tuple[pl.DataFrame, tuple[float, float, float]]:
    """Voxel count per label id of a zarr label volume, read chunk-slab by slab."""
    import fastremap
    import zarr

    arr = zarr.open_array(str(path), mode="r")
    counts: dict[int, int] = {}
    step = arr.chunks[0]
    for z0 in range(0, arr.shape[0], step):
        ids, n = fastremap.unique(np.asarray(arr[z0:z0 + step]), return_counts=True)
        for i, c in zip(ids.tolist(), n.tolist(), strict=True):
            counts[i] = counts.get(i, 0) + c
    counts.pop(0, None)
    vs = tuple(float(v) for v in arr.attrs.get("voxel_size", (1.0, 1.0, 1.0)))
    return (pl.DataFrame({"body_id": list(counts), "size": list(counts.values())},
                         schema={"body_id": pl.Int64, "size": pl.Int64}), vs)  # type: ignore[return-value]
