"""Bring a published connectome into the same schema: an edge list + a neuron table.

Edge list (CSV, TSV or Parquet): columns ``pre``, ``post``, ``weight`` and an
optional ``type`` (``chemical`` — the default — or ``electrical``/gap junction;
aliases ``source``/``target``). ``pre``/``post`` are cell names or body ids.
Chemical edges become ``ConnectsTo {weight, weightHR}``; electrical ones one
``GapJunction {weight}`` per cell pair (a gap junction has no direction: a pair
listed both ways must carry the same weight and is stored once, from the
lower body id to the higher). There are no synapse nodes
(``Meta.synapseLevel = false``).

Neuron table (``--neurons``; CSV, TSV or Parquet; header names case-insensitive):
``name`` (required when edges use names), and optionally ``body_id``, ``type``
(cell type/class, e.g. ``AVA``), ``instance`` (default: the name), ``status``,
``kind`` (``neuron`` | ``muscle`` | ``other``: only ``neuron`` gets ``:Neuron``),
``class`` (a coarser grouping, e.g. ``interneuron``), ``size``. Every other
column is kept, spelled as in the header, as a property of the body. Every cell
the edge list names must be in the table. Without ``body_id``, ids are minted
1..N in name order (deterministic, so re-importing the same files changes
nothing). See docs/import-connectome.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from cxgraph.errors import InputDataError
from cxgraph.graph.snapshot import Snapshot, is_electrical, make_snapshot

log = logging.getLogger(__name__)

NEURON_COLUMNS = ("name", "body_id", "type", "instance", "status", "kind", "class", "size")
NEURON_ALIASES = {"bodyid": "body_id", "id": "body_id", "cell": "name"}
KINDS = ("neuron", "muscle", "other")
# Properties the loader computes or manages; an extra column may not overwrite them.
RESERVED = {"pre", "post", "upstream", "downstream", "synweight", "roiinfo", "validfrom",
            "validto", "seenin", "stagerun", "block", "properties"}
EDGE_ALIASES = {"source": "pre", "target": "post"}


def read_table(path: Path | str) -> pl.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame; headers and string cells stripped of padding."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pl.read_parquet(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            df = pl.read_csv(path, separator=sep, infer_schema_length=10000)
        else:
            raise InputDataError(f"{path}: expected .csv, .tsv or .parquet")
    except pl.exceptions.PolarsError as e:
        raise InputDataError(f"{path}: cannot read it as a table ({e})") from e
    df = df.rename({c: c.strip() for c in df.columns})
    return df.with_columns(pl.col(pl.Utf8).str.strip_chars())


def _canonical(df: pl.DataFrame, known: tuple[str, ...], aliases: dict[str, str],
               where: str) -> pl.DataFrame:
    """Known columns renamed to their canonical lower-case spelling; others untouched."""
    rename: dict[str, str] = {}
    for c in df.columns:
        key = c.lower()
        key = aliases.get(key, key)
        if key in known and c != key:
            rename[c] = key
    targets = list(rename.values()) + [c for c in df.columns if c not in rename]
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise InputDataError(f"{where}: column(s) {dup} given more than once "
                             f"(headers are case-insensitive; it has {df.columns})")
    return df.rename(rename)


def neuron_table(n: pl.DataFrame, where: str) -> pl.DataFrame:
    """Validate a neuron table; extra columns packed into ``properties`` (a JSON object)."""
    n = _canonical(n, NEURON_COLUMNS, NEURON_ALIASES, where)
    if "name" not in n.columns and "body_id" not in n.columns:
        raise InputDataError(f"{where}: the neuron table needs a `name` column (the cell "
                             f"names of the edge list) or `body_id`; it has {n.columns}")
    for key in ("name", "body_id"):
        if key not in n.columns:
            continue
        blank = n.with_row_index("row").filter(
            pl.col(key).is_null() | (pl.col(key).cast(pl.Utf8) == ""))["row"]
        if blank.len():
            raise InputDataError(f"{where}: empty `{key}` in data row(s) "
                                 f"{(blank + 1).head(10).to_list()}")
        if n[key].n_unique() != n.height:
            dups = n.filter(pl.col(key).is_duplicated())[key].unique().sort().head(10)
            raise InputDataError(f"{where}: `{key}` repeats: {dups.to_list()}")
    if "kind" in n.columns:
        n = n.with_columns(pl.col("kind").cast(pl.Utf8).str.to_lowercase())
        bad = n.filter(pl.col("kind").is_not_null() & ~pl.col("kind").is_in(list(KINDS)))
        if bad.height:
            raise InputDataError(
                f"{where}: `kind` must be one of {list(KINDS)}; found "
                f"{bad['kind'].unique().sort().head(5).to_list()} (e.g. for "
                f"{bad['name' if 'name' in n.columns else 'body_id'].head(3).to_list()})")
    extras = [c for c in n.columns if c not in NEURON_COLUMNS]
    clash = [c for c in extras if c.lower() in RESERVED]
    if clash:
        raise InputDataError(f"{where}: column(s) {clash} would overwrite properties the "
                             f"loader computes ({sorted(RESERVED)}); rename them")
    for c in ("type", "instance", "status", "kind", "class"):
        if c in n.columns:
            n = n.with_columns(pl.col(c).cast(pl.Utf8))
    if extras:
        def plain(c: str) -> pl.Expr:
            dt = n.schema[c]
            if dt.is_float():
                return pl.col(c).fill_nan(None)
            if dt.is_numeric() or dt in (pl.Utf8, pl.Boolean):
                return pl.col(c)
            return pl.col(c).cast(pl.Utf8)  # dates, lists, ...: kept as text
        n = n.with_columns(pl.struct([plain(c) for c in extras]).struct.json_encode()
                           .alias("properties")).drop(extras)
    return n


def _gap_junction_pairs(e: pl.DataFrame, source: str,
                        names: dict[int, str] | None) -> pl.DataFrame:
    """Electrical rows -> one row per unordered cell pair (pre = the lower body id)."""
    d = e.group_by("pre", "post").agg(pl.col("weight").sum()).with_columns(
        pl.min_horizontal("pre", "post").alias("a"), pl.max_horizontal("pre", "post").alias("b"))
    p = d.group_by("a", "b").agg(pl.col("weight").min().alias("lo"),
                                 pl.col("weight").max().alias("hi"))
    bad = p.filter(pl.col("lo") != pl.col("hi"))
    if bad.height:
        show = [(names.get(a, a) if names else a, names.get(b, b) if names else b, lo, hi)
                for a, b, lo, hi in bad.head(5).select("a", "b", "lo", "hi").rows()]
        raise InputDataError(
            f"{source}: {bad.height} gap-junction pair(s) are listed both ways with different "
            f"weights, e.g. (cell, cell, weight one way, the other) {show}; a gap junction has "
            "no direction: give each pair once, or the same weight both ways")
    return p.select(pl.col("a").alias("pre"), pl.col("b").alias("post"),
                    pl.col("hi").alias("weight"), pl.lit("electrical").alias("type")
                    ).sort("pre", "post")  # group_by order varies; the fingerprint must not


def snapshot_from_edge_list(edges: Path | str | pl.DataFrame,
                            neurons: Path | str | pl.DataFrame | None = None,
                            source: str | None = None) -> Snapshot:
    """A ``Snapshot`` of kind ``import`` from an edge list and a neuron table.

    Validates everything before anything is written: a bad table raises
    ``InputDataError`` naming the file and the offending column, rows or cells.
    """
    where_e = str(Path(edges).resolve()) if not isinstance(edges, pl.DataFrame) else "edge list"
    where_n = (str(Path(neurons).resolve()) if isinstance(neurons, (str, Path))
               else "neuron table")
    source = source or where_e
    e = edges if isinstance(edges, pl.DataFrame) else read_table(edges)
    e = _canonical(e, ("pre", "post", "weight", "type"), EDGE_ALIASES, where_e)
    missing = [c for c in ("pre", "post", "weight") if c not in e.columns]
    if missing:
        raise InputDataError(f"{where_e}: edge list lacks column(s) {missing}; it has "
                             f"{e.columns}")
    n = (neurons if isinstance(neurons, pl.DataFrame)
         else read_table(neurons) if neurons is not None else None)
    if n is not None:
        n = neuron_table(n, where_n)
    by_name = e["pre"].dtype == pl.Utf8 or e["post"].dtype == pl.Utf8
    names: dict[int, str] | None = None
    if by_name:
        used = pl.concat([e["pre"].cast(pl.Utf8), e["post"].cast(pl.Utf8)]).unique()
        if n is None:
            n = pl.DataFrame({"name": used.sort()})
        if "name" not in n.columns:
            raise InputDataError(f"{where_n}: the neuron table needs a `name` column when "
                                 f"the edge list uses names; it has {n.columns}")
        unknown = sorted(set(used.to_list()) - set(n["name"].cast(pl.Utf8).to_list()))
        if unknown:
            raise InputDataError(
                f"{where_n}: {len(unknown)} cell(s) named by the edge list ({where_e}) are "
                f"not in the neuron table, e.g. {unknown[:10]}; add a row for each (names "
                "must match exactly, case included)")
        n = n.with_columns(pl.col("name").cast(pl.Utf8))
        if "body_id" not in n.columns:
            n = n.sort("name").with_columns(pl.int_range(1, n.height + 1).alias("body_id"))
        ids = dict(zip(n["name"].to_list(), n["body_id"].to_list(), strict=True))
        names = {v: k for k, v in ids.items()}
        e = e.with_columns(pl.col("pre").cast(pl.Utf8).replace_strict(ids, return_dtype=pl.Int64),
                           pl.col("post").cast(pl.Utf8).replace_strict(ids, return_dtype=pl.Int64))
    elif n is None:
        n = pl.DataFrame({"body_id": pl.concat([e["pre"], e["post"]]).unique()})
    else:
        if "body_id" not in n.columns:
            raise InputDataError(f"{where_n}: the neuron table needs a `body_id` column when "
                                 f"the edge list uses body ids; it has {n.columns}")
        used_ids = set(pl.concat([e["pre"], e["post"]]).cast(pl.Int64).to_list())
        unknown_ids = sorted(used_ids - set(n["body_id"].cast(pl.Int64).to_list()))
        if unknown_ids:
            raise InputDataError(
                f"{where_n}: {len(unknown_ids)} body id(s) of the edge list ({where_e}) are "
                f"not in the neuron table, e.g. {unknown_ids[:10]}; add a row for each")
    if "instance" in n.columns or "name" in n.columns:  # neuPrint's instance: the cell name
        n = n.with_columns(pl.coalesce([pl.col(c) for c in ("instance", "name")
                                        if c in n.columns]).cast(pl.Utf8).alias("instance"))
    if "type" not in e.columns:
        e = e.with_columns(pl.lit(None, pl.Utf8).alias("type"))
    w = e["weight"].cast(pl.Float64)
    if w.null_count() or (w != w.round()).any():
        raise InputDataError(f"{where_e}: weights must be whole numbers (counts)")
    e = e.with_columns(pl.col("weight").cast(pl.Int64)).filter(pl.col("weight") > 0)
    elec = is_electrical(pl.col("type"))
    e = pl.concat([
        e.filter(~elec).select("pre", "post", "weight", pl.lit("chemical").alias("type")),
        _gap_junction_pairs(e.filter(elec), where_e, names)])
    bodies = n.select([c for c in ("body_id", *NEURON_COLUMNS[2:], "name", "properties")
                       if c in n.columns])
    return make_snapshot("import", source, edges=e, bodies=bodies)


_SUMMARY = """
CALL () {
  MATCH (s:Segment) WHERE s.validTo IS NULL
  RETURN count(s) AS cells, count(CASE WHEN s:Neuron THEN 1 END) AS neurons,
         count(CASE s.kind WHEN 'muscle' THEN 1 END) AS muscles,
         count(CASE s.kind WHEN 'other' THEN 1 END) AS others
}
CALL () {
  MATCH ()-[e:ConnectsTo]->() WHERE e.validTo IS NULL
  RETURN count(e) AS chemical, coalesce(sum(e.weight), 0) AS chemicalWeight
}
CALL () {
  MATCH ()-[g:GapJunction]->() WHERE g.validTo IS NULL
  RETURN count(g) AS electrical, coalesce(sum(g.weight), 0) AS electricalWeight
}
RETURN cells, neurons, muscles, others, chemical, chemicalWeight, electrical, electricalWeight
"""


def import_summary(store) -> dict[str, int]:
    """What the graph now holds (current version): cells, neurons, muscles, other cells,
    chemical connections (ConnectsTo) and electrical ones (GapJunction), with weight sums."""
    return store.read(_SUMMARY).records()[0]


def format_summary(s: dict[str, int]) -> str:
    return (f"cells: {s['cells']} ({s['neurons']} :Neuron, {s['muscles']} muscle, "
            f"{s['others']} other)\n"
            f"chemical connections (ConnectsTo): {s['chemical']}, total weight "
            f"{s['chemicalWeight']}\n"
            f"electrical connections (GapJunction, one per cell pair): {s['electrical']}, "
            f"total weight {s['electricalWeight']}")
