"""Bring a published connectome into the same schema: an edge list + a neuron table.

Edge list (CSV, TSV or Parquet): columns ``pre``, ``post``, ``weight`` and an
optional ``type`` (``chemical`` — the default — or ``electrical``/gap junction;
aliases ``source``/``target``). ``pre``/``post`` are neuron names or body ids.

Neuron table: ``name`` and optionally ``body_id``, ``type`` (cell type/class),
``status``, ``instance``. Without ``body_id``, ids are minted 1..N in name order
(deterministic, so re-importing the same files changes nothing). Chemical
edges become ``ConnectsTo {weight}``; electrical ones ``GapJunction {weight}``.
There are no synapse nodes (``Meta.synapseLevel = false``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from cxgraph.errors import InputDataError
from cxgraph.graph.snapshot import Snapshot, make_snapshot

log = logging.getLogger(__name__)


def read_table(path: Path | str) -> pl.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame; string cells stripped of padding."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pl.read_parquet(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        sep = "\t" if suffix == ".tsv" else ","
        df = pl.read_csv(path, separator=sep, infer_schema_length=10000)
    else:
        raise InputDataError(f"{path}: expected .csv, .tsv or .parquet")
    df = df.rename({c: c.strip().lower() for c in df.columns})
    return df.with_columns(pl.col(pl.Utf8).str.strip_chars())


def snapshot_from_edge_list(edges: Path | str | pl.DataFrame,
                            neurons: Path | str | pl.DataFrame | None = None) -> Snapshot:
    """A ``Snapshot`` of kind ``import`` from an edge list and a neuron table."""
    source = str(Path(edges).resolve()) if not isinstance(edges, pl.DataFrame) else "edge list"
    e = edges if isinstance(edges, pl.DataFrame) else read_table(edges)
    e = e.rename({a: c for a, c in {"source": "pre", "target": "post"}.items()
                  if a in e.columns and c not in e.columns})
    missing = [c for c in ("pre", "post", "weight") if c not in e.columns]
    if missing:
        raise InputDataError(f"{source}: edge list lacks column(s) {missing}; it has {e.columns}")
    n = (neurons if isinstance(neurons, pl.DataFrame)
         else read_table(neurons) if neurons is not None else None)
    by_name = e["pre"].dtype == pl.Utf8 or e["post"].dtype == pl.Utf8
    if by_name:
        names = pl.concat([e["pre"].cast(pl.Utf8), e["post"].cast(pl.Utf8)]).unique()
        if n is None:
            n = pl.DataFrame({"name": names.sort()})
        if "name" not in n.columns:
            raise InputDataError("the neuron table needs a `name` column when edges use names")
        unknown = sorted(set(names.to_list()) - set(n["name"].to_list()))
        if unknown:
            log.warning("%d name(s) in the edge list are not in the neuron table, added: %s",
                        len(unknown), unknown[:10])
            n = pl.concat([n, pl.DataFrame({"name": unknown})], how="diagonal")
        if n["name"].n_unique() != n.height:
            raise InputDataError("neuron table: names repeat")
        if "body_id" not in n.columns:
            n = n.sort("name").with_columns(pl.int_range(1, n.height + 1).alias("body_id"))
        ids = dict(zip(n["name"].to_list(), n["body_id"].to_list(), strict=True))
        e = e.with_columns(pl.col("pre").cast(pl.Utf8).replace_strict(ids, return_dtype=pl.Int64),
                           pl.col("post").cast(pl.Utf8).replace_strict(ids, return_dtype=pl.Int64))
    elif n is None:
        n = pl.DataFrame({"body_id": pl.concat([e["pre"], e["post"]]).unique()})
    if "type" not in e.columns:
        e = e.with_columns(pl.lit(None, pl.Utf8).alias("type"))
    bodies = n.select([c for c in ("body_id", "name", "type", "status", "instance", "size")
                       if c in n.columns])
    w = e["weight"].cast(pl.Float64)
    if (w != w.round()).any():
        raise InputDataError(f"{source}: weights must be whole numbers (synapse counts)")
    e = e.with_columns(pl.col("weight").cast(pl.Int64))
    return make_snapshot("import", source, edges=e.select("pre", "post", "weight", "type"),
                         bodies=bodies)
