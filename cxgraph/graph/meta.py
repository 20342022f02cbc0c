"""The neuPrint dataset description: ROI counts of bodies and connections, and ``:Meta``.

neuPrint's clients read the dataset's shape from its ``:Meta`` node (notes/neuprint-model.md):
``neuronProperties`` (which ``:Neuron`` properties exist, name -> type; ``fetch_neurons``
returns exactly these), ``roiInfo`` (per-ROI synapse totals), ``roiHierarchy``,
``primaryRois``/``superLevelRois`` and ``statusDefinitions``. ``refresh_meta`` computes them
from the current graph; every loader calls it after writing a version (``loader``,
``bulk``; ``import-connectome`` goes through ``loader``).

ROIs: ``VOLUME_ROI``, the whole reconstructed volume, and the ROIs a user declares
(``cxgraph.graph.rois``). A body with synapses (or connection weights, for an imported edge
list) has ``roiInfo`` ``{"volume": {"pre", "post", "upstream", "downstream"}, "<roi>":
{...}}`` (each synapse point counted in the ROIs it lies in) and the boolean ``<roi> =
true`` for each; a ``ConnectsTo`` has ``roiInfo`` ``{"volume": {"pre", "post", "weightHP"},
"<roi>": {...}}`` (``post`` = ``weight``; a synapse counts in the ROIs of its post point, as
neuPrint assigns them); every synapse has ``volume = true`` and ``<roi> = true`` for the
ROIs its point lies in. The per-ROI counts are computed in polars at load time
(``body_roi_info``, ``connection_roi_info``, from the snapshot's ``synapse_rois``).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

VOLUME_ROI = "volume"
# cxgraph's bookkeeping on nodes and relationships (versions, provenance, own ids). It is
# not part of the neuPrint model: not listed in neuronProperties, and the neuPrint front
# door (cxgraph/api/neuprint.py) strips it from every answer.
INTERNAL = frozenset({"seenIn", "validFrom", "validTo", "stageRun", "block", "supervoxelId",
                      "synapseId", "synapseSetId", "currentVersion", "synapseLevel", "source",
                      "roiParents"})
STATUS_DEFINITIONS = {
    "Traced": "reconstruction complete (proofread)",
    "Roughly traced": "mostly complete, some fragments may be missing",
    "Orphan": "a fragment without a soma, not attached to a neuron",
    "Assign": "not yet reviewed (as segmented)",
}

_BODY_COUNTS = ("pre", "post", "upstream", "downstream")


def _roi_json(rows: pl.DataFrame, fields: dict[str, str], by: str) -> pl.DataFrame:
    """``by``, ``roi_info`` (neuPrint's JSON: ROI -> {field: count}) and ``rois`` (the list
    of ROIs) of ``rows`` (one per ``by`` and ``roi``, with the count columns)."""
    parts: list[Any] = [pl.lit('"'), pl.col("roi"), pl.lit('":{')]
    for i, (name, col) in enumerate(fields.items()):
        parts += [pl.lit(("," if i else "") + json.dumps(name) + ":"),
                  pl.col(col).fill_null(0).cast(pl.Int64).cast(pl.Utf8)]
    parts.append(pl.lit("}"))
    return rows.with_columns(pl.concat_str(parts).alias("_f")).group_by(by, maintain_order=True) \
        .agg(pl.col("_f").str.join(","), pl.col("roi").alias("rois")) \
        .select(by, pl.concat_str([pl.lit("{"), pl.col("_f"), pl.lit("}")]).alias("roi_info"),
                "rois")


def body_roi_info(bodies: pl.DataFrame, roi_counts: pl.DataFrame | None = None) -> pl.DataFrame:
    """``bodies`` (pre, post, upstream, downstream) with ``roi_info`` (neuPrint JSON),
    ``rois`` (the ROIs it touches: ``volume`` if it has synapses or weights, and the declared
    ones of ``roi_counts``: body_id, roi, pre, post, upstream, downstream) and ``in_volume``."""
    touches = pl.sum_horizontal([pl.col(c).fill_null(0) for c in _BODY_COUNTS]) > 0
    rows = bodies.filter(touches).select("body_id", pl.lit(VOLUME_ROI).alias("roi"),
                                         *[pl.col(c).cast(pl.Int64) for c in _BODY_COUNTS])
    if roi_counts is not None and roi_counts.height:
        rows = pl.concat([rows, roi_counts.select(rows.columns).cast(rows.schema)])  # type: ignore[arg-type]
    info = _roi_json(rows, {c: c for c in _BODY_COUNTS}, "body_id")
    return bodies.join(info, on="body_id", how="left").with_columns(
        pl.col("roi_info").fill_null("{}"), touches.alias("in_volume"))


def connection_roi_info(conns: pl.DataFrame, roi_counts: pl.DataFrame | None = None
                        ) -> pl.DataFrame:
    """``conns`` (pre, post, weight, weight_hr, weight_hp, type) with ``roi_info`` (neuPrint
    JSON): the volume, and the declared ROIs of ``roi_counts`` (pre, post, roi, weight,
    weight_hr, weight_hp of the synapses whose post point lies in it; chemical only)."""
    conns = conns.with_row_index("_i")
    cols = ["_i", "roi", "weight", "weight_hr", "weight_hp"]
    rows = conns.with_columns(pl.lit(VOLUME_ROI).alias("roi")).select(cols)
    if roi_counts is not None and roi_counts.height:
        chem = conns.filter(pl.col("type").is_null()).select("pre", "post", "_i")
        rows = pl.concat([rows, roi_counts.join(chem, on=["pre", "post"]).select(cols)
                          .cast(rows.schema)])  # type: ignore[arg-type]
    info = _roi_json(rows, {"pre": "weight_hr", "post": "weight", "weightHP": "weight_hp"}, "_i")
    return conns.join(info.drop("rois"), on="_i", how="left").drop("_i")


_TOTALS = """
MATCH (s:Segment) WHERE s.validTo IS NULL
RETURN sum(coalesce(s.pre, 0)) AS pre, sum(coalesce(s.post, 0)) AS post,
       sum(coalesce(s.downstream, 0)) AS downstream, sum(coalesce(s.upstream, 0)) AS upstream
"""
_NEURON_KEYS = """
MATCH (n:Neuron) UNWIND keys(n) AS k
WITH k, head(collect(DISTINCT valueType(n[k]))) AS t
RETURN k, t ORDER BY k
"""
_ROI_TOTALS = """
MATCH (s:Synapse) WHERE s.validTo IS NULL
UNWIND [r IN $rois WHERE s[r]] AS roi
RETURN roi, sum(CASE s.type WHEN 'pre' THEN 1 ELSE 0 END) AS pre,
       sum(CASE s.type WHEN 'post' THEN 1 ELSE 0 END) AS post
"""
_SET_META = """
MATCH (m:Meta {dataset: $dataset})
SET m.roiInfo = $roiInfo, m.roiHierarchy = $roiHierarchy, m.primaryRois = $primary,
    m.superLevelRois = $superLevel, m.neuronProperties = $neuronProperties,
    m.roiParents = $roiParents,
    m.statusDefinitions = CASE WHEN coalesce(m.statusDefinitions, '{}') = '{}'
                               THEN $statusDefinitions ELSE m.statusDefinitions END
"""


def neuron_properties(store: Any, rois: Any = ()) -> dict[str, str]:
    """``:Neuron`` property name -> Neo4j type (``INTEGER``, ``STRING``, ...), without the
    internal properties and ROI booleans (``volume`` and ``rois``)."""
    out = {}
    for r in store.read(_NEURON_KEYS).records():
        if r["k"] in INTERNAL or r["k"] == VOLUME_ROI or r["k"] in rois:
            continue
        out[r["k"]] = str(r["t"]).replace(" NOT NULL", "")
    return out


def stored_roi_parents(store: Any, dataset: str) -> dict[str, str | None]:
    """The declared ROIs (name -> parent) of the last load, from ``:Meta``."""
    rows = store.read("MATCH (m:Meta {dataset: $d}) RETURN m.roiParents AS p",
                      {"d": dataset}).rows
    return json.loads(rows[0][0]) if rows and rows[0][0] else {}


def refresh_meta(store: Any, dataset: str,
                 roi_parents: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Recompute ``:Meta {dataset}``'s ROI and property description from the current graph
    (the node itself is written by the loader first); returns what it set. ``roi_parents``:
    the declared ROIs (name -> parent), default those of the last load."""
    if roi_parents is None:
        roi_parents = stored_roi_parents(store, dataset)
    t = store.read(_TOTALS).records()[0]
    synapse_level = bool(t["pre"] or t["post"])
    roi = ({"pre": int(t["pre"]), "post": int(t["post"])} if synapse_level
           else {"pre": int(t["downstream"]), "post": int(t["upstream"])})
    info = {VOLUME_ROI: roi} if roi["pre"] or roi["post"] else {}
    if roi_parents:
        totals = {r["roi"]: r for r in store.read(_ROI_TOTALS, {"rois": list(roi_parents)})
                  .records()}
        info.update({n: {k: int(totals[n][k]) if n in totals else 0 for k in ("pre", "post")}
                     for n in roi_parents})

    def tree(parent: str | None) -> list[dict[str, Any]]:
        out = []
        for name in [n for n, p in roi_parents.items() if p == parent]:
            kids = tree(name)
            out.append({"name": name, **({"children": kids} if kids else {})})
        return out

    declared = tree(None)
    children = [{"name": VOLUME_ROI, **({"children": declared} if declared else {})}]
    leaves = [n for n in roi_parents if n not in set(roi_parents.values())]
    top = [n for n, p in roi_parents.items() if p is None]
    base = [VOLUME_ROI] if info else []
    values = {
        "dataset": dataset,
        "roiInfo": json.dumps(info),
        "roiHierarchy": json.dumps({"name": dataset, "children": children if info else []}),
        "primary": leaves or base, "superLevel": top or base,
        "roiParents": json.dumps(roi_parents),
        "neuronProperties": json.dumps(neuron_properties(store, roi_parents), sort_keys=True),
        "statusDefinitions": json.dumps(STATUS_DEFINITIONS),
    }
    store.write(_SET_META, values)
    return values
