"""The neuPrint dataset description: ROI counts of bodies and connections, and ``:Meta``.

neuPrint's clients read the dataset's shape from its ``:Meta`` node (notes/neuprint-model.md):
``neuronProperties`` (which ``:Neuron`` properties exist, name -> type; ``fetch_neurons``
returns exactly these), ``roiInfo`` (per-ROI synapse totals), ``roiHierarchy``,
``primaryRois``/``superLevelRois`` and ``statusDefinitions``. ``refresh_meta`` computes them
from the current graph; every loader calls it after writing a version (``loader``,
``bulk``; ``import-connectome`` goes through ``loader``).

ROIs: the one ROI today is the whole reconstructed volume, ``VOLUME_ROI``. A body with
synapses (or connection weights, for an imported edge list) has ``roiInfo``
``{"volume": {"pre", "post", "upstream", "downstream"}}`` and the boolean ``volume =
true``; a ``ConnectsTo`` has ``roiInfo`` ``{"volume": {"pre", "post", "weightHP"}}``
(``post`` = ``weight``, as neuPrint counts the post side); every synapse has ``volume =
true``. The per-ROI counts are computed in polars at load time (``body_roi_info``,
``connection_roi_info``), so declared regions can join them later without a pass over the
graph.
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
                      "synapseId", "synapseSetId", "currentVersion", "synapseLevel", "source"})
STATUS_DEFINITIONS = {
    "Traced": "reconstruction complete (proofread)",
    "Roughly traced": "mostly complete, some fragments may be missing",
    "Orphan": "a fragment without a soma, not attached to a neuron",
    "Assign": "not yet reviewed (as segmented)",
}

_JSON_KEY = json.dumps(VOLUME_ROI)


def _counts_json(fields: dict[str, pl.Expr]) -> pl.Expr:
    parts: list[Any] = [pl.lit("{" + _JSON_KEY + ":{")]
    for i, (name, expr) in enumerate(fields.items()):
        parts += [pl.lit(("," if i else "") + json.dumps(name) + ":"),
                  expr.fill_null(0).cast(pl.Int64).cast(pl.Utf8)]
    parts.append(pl.lit("}}"))
    return pl.concat_str(parts)


def body_roi_info(bodies: pl.DataFrame) -> pl.DataFrame:
    """``bodies`` (pre, post, upstream, downstream) with ``roi_info`` (neuPrint JSON) and
    ``in_volume`` (the body touches the volume ROI: it has synapses or weights)."""
    counts = {k: pl.col(k) for k in ("pre", "post", "upstream", "downstream")}
    touches = pl.sum_horizontal([c.fill_null(0) for c in counts.values()]) > 0
    return bodies.with_columns(
        pl.when(touches).then(_counts_json(counts)).otherwise(pl.lit("{}")).alias("roi_info"),
        touches.alias("in_volume"))


def connection_roi_info(conns: pl.DataFrame) -> pl.DataFrame:
    """``conns`` (weight, weight_hr, weight_hp) with ``roi_info`` (neuPrint JSON)."""
    return conns.with_columns(_counts_json({
        "pre": pl.col("weight_hr"), "post": pl.col("weight"),
        "weightHP": pl.col("weight_hp")}).alias("roi_info"))


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
_SET_META = """
MATCH (m:Meta {dataset: $dataset})
SET m.roiInfo = $roiInfo, m.roiHierarchy = $roiHierarchy, m.primaryRois = $rois,
    m.superLevelRois = $rois, m.neuronProperties = $neuronProperties,
    m.statusDefinitions = CASE WHEN coalesce(m.statusDefinitions, '{}') = '{}'
                               THEN $statusDefinitions ELSE m.statusDefinitions END
"""


def neuron_properties(store: Any) -> dict[str, str]:
    """``:Neuron`` property name -> Neo4j type (``INTEGER``, ``STRING``, ...), without the
    internal properties and ROI booleans."""
    out = {}
    for r in store.read(_NEURON_KEYS).records():
        if r["k"] in INTERNAL or r["k"] == VOLUME_ROI:
            continue
        out[r["k"]] = str(r["t"]).replace(" NOT NULL", "")
    return out


def refresh_meta(store: Any, dataset: str) -> dict[str, Any]:
    """Recompute ``:Meta {dataset}``'s ROI and property description from the current graph
    (the node itself is written by the loader first); returns what it set."""
    t = store.read(_TOTALS).records()[0]
    synapse_level = bool(t["pre"] or t["post"])
    roi = ({"pre": int(t["pre"]), "post": int(t["post"])} if synapse_level
           else {"pre": int(t["downstream"]), "post": int(t["upstream"])})
    has_roi = bool(roi["pre"] or roi["post"])
    values = {
        "dataset": dataset,
        "roiInfo": json.dumps({VOLUME_ROI: roi} if has_roi else {}),
        "roiHierarchy": json.dumps({"name": dataset, "children":
                                    [{"name": VOLUME_ROI}] if has_roi else []}),
        "rois": [VOLUME_ROI] if has_roi else [],
        "neuronProperties": json.dumps(neuron_properties(store), sort_keys=True),
        "statusDefinitions": json.dumps(STATUS_DEFINITIONS),
    }
    store.write(_SET_META, values)
    return values
