"""The traceback: compare a region with a reference from L5 (the graph) down to L1 (images).

Per layer, every recorded metric is compared with spatial units as samples
(``stats.compare``); a quality metric (one with a ``worse`` direction, ``metrics.py``) is
anomalous when it is worse in the region with a Holm-adjusted one-sided permutation p
below ``alpha`` and an effect that matters (``min_relative`` of the reference mean, or
``min_effect`` pooled standard deviations when the reference mean is ~0). L5 is not
judged for quality: it *differs* or not, tested both ways on its content metrics.

The conclusion follows from the verdicts, never from the scenario:

- an anomalous layer below L5: the deepest one is the root cause (a processing artifact
  when L5 differs, an anomaly without measurable effect on the graph when it does not);
- L5 differs and nothing beneath it is anomalous: the difference is real (biology);
- neither: no difference and no processing anomaly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import numpy as np
import polars as pl

from cxgraph.errors import WorkspaceError
from cxgraph.provenance import ProvenanceStore
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.engine import Roi
from pipeline.traceback import metrics as cat
from pipeline.traceback.stats import compare, holm
from pipeline.traceback.units import (
    Volume,
    box_of,
    fraction_inside,
    grid_map,
    quality_units,
    run_chains,
    volume_of,
)

ORDER = ("L5", "L4", "L3", "L2", "L1")


@dataclasses.dataclass(frozen=True)
class Thresholds:
    alpha: float = 0.05  # family-wise, per layer (Holm)
    min_relative: float = 0.10  # |target - reference| / |reference| that matters
    min_effect: float = 0.8  # pooled standard deviations (Cohen's "large")
    inside: float = 0.5  # a unit belongs to the region when this much of it lies inside


def traceback(ws: Workspace, region: Roi, reference: Roi | None = None,
              bodies: list[int] | None = None, name: str = "region",
              thresholds: Thresholds | None = None) -> dict[str, Any]:
    """The traceback report (a JSON-able dict; ``report.write_report`` renders it)."""
    th = thresholds or Thresholds()
    vol = volume_of(ws)
    units = quality_units(ws)
    if units.is_empty():
        raise WorkspaceError(f"{ws.root} has no quality rows: run the pipeline first")
    tables_l5 = _l5_from_tables(ws, vol, bodies)
    graph_check = _graph_check(units, tables_l5, region, th)
    if bodies or not (units["layer"] == "L5").any():
        units = pl.concat([units.filter(pl.col("layer") != "L5"), tables_l5], how="diagonal")
    layers = [_layer(layer, units.filter(pl.col("layer") == layer), region, reference, th)
              for layer in ORDER]
    conclusion, root, chain = _conclude(layers)
    report = {
        "title": "cxgraph traceback",
        "workspace": str(ws.root),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "region": {"name": name, "box": box_of(region)},
        "reference": {"name": "the given reference" if reference else "the rest of the volume",
                      "box": box_of(reference) if reference else None},
        "bodies": bodies,
        "volume_shape": list(vol.shape), "block_shape": list(vol.block_shape),
        "thresholds": dataclasses.asdict(th),
        "conclusion": conclusion, "root_cause_layer": root,
        "summary": _summary(conclusion, root, layers, name),
        "chain": chain, "graph_check": graph_check, "layers": layers,
        "maps": _maps(units, layers, vol, region),
    }
    report["actions"] = _actions(ws, report, region)
    report["provenance"] = {"stage_runs": _runs(ws, units)}
    return report


# --- per layer ----------------------------------------------------------------------


def _split(g: pl.DataFrame, region: Roi, reference: Roi | None, th: Thresholds):
    frac = fraction_inside(g, region)
    inside = frac >= th.inside
    if not inside.any():  # a region thinner than the units: take every unit it meets
        inside = frac > 0
    outside = frac == 0
    if reference is not None:
        outside &= fraction_inside(g, reference) >= th.inside
    return g.filter(pl.Series(inside)), g.filter(pl.Series(outside))


def _layer(layer: str, rows: pl.DataFrame, region: Roi, reference: Roi | None,
           th: Thresholds) -> dict[str, Any]:
    out = []
    if not rows.is_empty():
        for (stage, metric, kind), g in sorted(
                rows.group_by("stage", "metric", "kind"), key=lambda kv: kv[0]):
            t, r = _split(g, region, reference, th)
            worse = cat.worse(layer, metric)
            res = compare(t["value"].to_numpy(), r["value"].to_numpy(), worse)
            out.append({"metric": metric, "stage": stage, "unit": kind, "worse": worse,
                        "what": cat.describe(layer, metric), **res,
                        "stage_runs": sorted(set(g["stage_run_id"].to_list())),
                        "target_units": sorted(t["unit"].to_list())[:200]})
    # a metric the region cannot be told apart on (e.g. per section, for a corner that
    # is part of every section) is listed, not tested
    not_compared = sorted({f"{m['metric']} ({m['stage']}, per {m['unit']})" for m in out
                           if m["p"] is None})
    out = [m for m in out if m["p"] is not None]
    judged = [m for m in out if m["worse"] or layer == "L5"]  # L5: differs either way
    for m, p in zip(judged, holm([m["p"] for m in judged]), strict=True):
        m["p_adjusted"] = p
        m["anomalous"] = bool(p is not None and p < th.alpha and _matters(m, th))
    for m in out:
        m.setdefault("p_adjusted", None)
        m.setdefault("anomalous", False)
        m["plot"] = m["anomalous"] or m["metric"] in ("synapses", "membrane_contrast")
    flagged = [m for m in out if m["anomalous"]]
    if not out:
        verdict = "no data"
    elif layer == "L5":
        verdict = "differs" if flagged else "same"
    else:
        verdict = "anomalous" if flagged else "normal"
    flagged.sort(key=lambda m: (m["p_adjusted"], -abs(m["effect_size"] or 0)))
    return {"layer": layer, "name": cat.LAYERS[layer], "verdict": verdict,
            "strongest": _headline(flagged[0]) if flagged else None, "metrics": out,
            "not_compared": not_compared}


def _matters(m: dict, th: Thresholds) -> bool:
    rel, d = m["relative"], m["effect_size"]
    if d is None or abs(d) < th.min_effect:
        return False
    return rel is None or abs(rel) >= th.min_relative


def _headline(m: dict) -> dict:
    return {k: m[k] for k in ("metric", "stage", "unit", "relative", "difference",
                              "effect_size", "p_adjusted")}


def _pct(m: dict) -> str:
    if m["relative"] is not None:
        return f"{m['relative']:+.0%}"
    return f"{m['difference']:+.3g}"


def _say(m: dict) -> str:
    return (f"{m['metric']} ({m['stage']}, per {m['unit']}) {_pct(m)}, "
            f"d = {m['effect_size']:.2g}, p = {m['p_adjusted']:.2g}")


def _conclude(layers: list[dict]) -> tuple[str, str | None, list[dict]]:
    by = {lay["layer"]: lay for lay in layers}
    below = [lay for lay in layers if lay["layer"] != "L5" and lay["verdict"] == "anomalous"]
    differs = by["L5"]["verdict"] == "differs"
    root = below[-1]["layer"] if below else None  # ORDER runs L5 -> L1: the last is deepest
    if root:
        conclusion = "processing-artifact" if differs else "processing-anomaly"
    else:
        conclusion = "biology" if differs else "no-difference"
    chain = []
    for lay in layers:
        if root and ORDER.index(lay["layer"]) > ORDER.index(root):
            break
        s = lay["strongest"]
        text = _say(s) if s else lay["verdict"]
        if lay["layer"] == root:
            text += " - root cause"
        chain.append({"layer": lay["layer"], "anomalous": lay["verdict"] in (
            "anomalous", "differs"), "verdict": lay["verdict"], "text": text})
    return conclusion, root, chain


def _summary(conclusion: str, root: str | None, layers: list[dict], name: str) -> str:
    by = {lay["layer"]: lay for lay in layers}
    l5 = by["L5"]["strongest"]
    graph = (f"In the graph, {name} differs from the reference: {_say(l5)}." if l5 else
             f"In the graph, {name} does not differ measurably from the reference.")
    if conclusion == "biology":
        return (graph + " No layer beneath it (synapses, segmentation, alignment, images) is "
                "anomalous there: the difference is real, not a processing artifact.")
    if conclusion == "no-difference":
        return graph + " No processing layer is anomalous there either."
    steps = [f"{lay['layer']} {lay['name']}: {_say(lay['strongest'])}" for lay in layers
             if lay["layer"] != "L5" and lay["strongest"]]
    tail = (" This is a processing artifact; the root cause is the deepest anomalous layer, "
            f"{root} ({by[root]['name']})." if conclusion == "processing-artifact" else
            f" The graph is not measurably affected yet; the deepest anomaly is {root}.")
    normal = [f"{lay['layer']}" for lay in layers
              if lay["layer"] != "L5" and lay["verdict"] == "normal"]
    return (graph + " Anomalous beneath it: " + "; ".join(steps) + "." + tail
            + (f" Normal: {', '.join(normal)}." if normal else ""))


# --- L5 from the tables (the cross-check, and the figures for chosen bodies) --------


def _l5_from_tables(ws: Workspace, vol: Volume, bodies: list[int] | None) -> pl.DataFrame:
    from cxgraph import ids

    if not ws.table_path("synapses").exists():
        return pl.DataFrame()
    syn = pl.read_parquet(ws.table_path("synapses"),
                          columns=["pre_body", "post_body", "block", "stage_run"])
    if bodies:
        syn = syn.filter(pl.col("pre_body").is_in(bodies) | pl.col("post_body").is_in(bodies))
    per = syn.group_by("block").agg(
        pl.len().cast(pl.Float64).alias("synapses"),
        pl.struct("pre_body", "post_body").n_unique().cast(pl.Float64).alias("connections"),
        pl.concat_list("pre_body", "post_body").list.explode(
            keep_nulls=False, empty_as_null=False).n_unique().cast(pl.Float64).alias("bodies"),
        pl.col("stage_run").first().alias("stage_run_id"))
    # blocks without a synapse count as 0, not as missing
    grid = [-(-n // b) for n, b in zip(vol.shape, vol.block_shape, strict=True)]
    every = pl.DataFrame({"block": [ids.block_id((z, y, x)) for z in range(grid[0])
                                    for y in range(grid[1]) for x in range(grid[2])]},
                         schema={"block": pl.Int64})
    per = every.join(per.with_columns(pl.col("block").cast(pl.Int64)), on="block", how="left")
    run = syn["stage_run"][0] if syn.height else (
        run_chains(ws).get("refine") or ["tables"])[0]  # no synapse at all: refine's run
    per = per.with_columns(pl.col("synapses", "connections", "bodies").fill_null(0.0),
                           pl.col("stage_run_id").fill_null(run))
    per = per.with_columns((pl.col("connections") / pl.col("bodies").clip(1)).alias(
        "connections_per_neuron"))
    long = per.unpivot(["synapses", "connections", "bodies", "connections_per_neuron"],
                       index=["block", "stage_run_id"], variable_name="metric")
    boxes = []
    for b in long["block"].unique().to_list():
        i = ids.block_index(int(b))
        lo = [k * s for k, s in zip(i, vol.block_shape, strict=True)]
        hi = [min(a + s, n) for a, s, n in zip(lo, vol.block_shape, vol.shape, strict=True)]
        boxes.append((b, lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))
    box = pl.DataFrame(boxes, schema=["block", "z0", "z1", "y0", "y1", "x0", "x1"],
                       orient="row")
    return long.join(box, on="block").with_columns(
        pl.lit("L5").alias("layer"), pl.lit("tables").alias("stage"),
        pl.lit("block").alias("kind"), pl.col("block").cast(pl.Utf8).alias("unit"))


def _graph_check(units: pl.DataFrame, tables: pl.DataFrame, region: Roi,
                 th: Thresholds) -> dict[str, Any]:
    """Synapses in the region counted in the tables and in Neo4j (the graph stage's rows)."""
    graph = units.filter((pl.col("layer") == "L5") & (pl.col("metric") == "synapses"))
    out: dict[str, Any] = {"metric": "synapses in the region's blocks", "tables": None,
                           "graph": None, "agree": None}
    if tables.is_empty():
        return out
    t = tables.filter(pl.col("metric") == "synapses")
    t_in = t.filter(pl.Series(fraction_inside(t, region) >= th.inside))
    out["tables"] = int(t_in["value"].sum())
    if not graph.is_empty():
        g_in = graph.filter(pl.col("unit").is_in(t_in["unit"].to_list()))
        out["graph"] = int(g_in["value"].sum())
        out["agree"] = out["graph"] == out["tables"]
    return out


# --- maps, actions, provenance ------------------------------------------------------


def _maps(units: pl.DataFrame, layers: list[dict], vol: Volume, region: Roi) -> list[dict]:
    cell = vol.block_shape[1:]
    region_cells = [region.begin[1] / cell[0], region.end[1] / cell[0],
                    region.begin[2] / cell[1], region.end[2] / cell[1]]
    out = []
    for lay in layers:
        pick = lay["strongest"] or next(
            (m for m in lay["metrics"] if m["worse"] or lay["layer"] == "L5"), None)
        if pick is None:
            continue
        g = units.filter((pl.col("layer") == lay["layer"]) & (pl.col("metric") == pick["metric"])
                         & (pl.col("stage") == pick["stage"]) & (pl.col("kind") == pick["unit"]))
        if g.is_empty():
            continue
        grid = grid_map(g, vol, cell)
        out.append({"layer": lay["layer"], "metric": pick["metric"],
                    "title": f"{lay['layer']} {pick['metric']} ({pick['stage']}, mean over z, "
                             f"cells of {cell[0]} x {cell[1]} px)",
                    "grid": [[None if np.isnan(v) else round(float(v), 5) for v in row]
                             for row in grid],
                    "region_cells": region_cells})
    return out


def _actions(ws: Workspace, report: dict, region: Roi) -> list[dict[str, Any]]:
    root, name = report["root_cause_layer"], report["region"]["name"]
    box = ",".join(f"{b}:{e}" for b, e in zip(region.begin, region.end, strict=True))
    acts: list[dict[str, Any]] = []
    if root is None:
        return [{"kind": "flag", "text": f"nothing to flag: {report['summary']}"}]
    by = {lay["layer"]: lay for lay in report["layers"]}
    lead = by[root]["strongest"]
    reason = f"{root} {lead['metric']} {_pct(lead)} (p = {lead['p_adjusted']:.2g})"
    acts.append({"kind": "flag", "text": f"Region {name!r} flagged: {report['conclusion']}, "
                                         f"root cause {reason}", "reason": reason})
    fix = cat.remedy(_remedy_key(by, root))
    if fix:
        stage, sets, why = fix
        t = ws.config.at(region.as_list())["agglomerate"].threshold  # the region's own
        sets = [x.format(lower=round(max(0.05, t - 0.2), 2), higher=round(min(0.95, t + 0.1), 2))
                for x in sets]
        # a parameter of a whole-volume step (e.g. the registration) cannot be the
        # region's alone: then the fix is a whole run from that stage
        regional = all(x.partition("=")[0].partition(".")[2] in
                       registry.get(x.partition(".")[0]).regional_params for x in sets)
        cmd = (f"cxgraph rerun --workspace {ws.root} --region {box} --from-stage {stage}"
               if regional else f"cxgraph run --workspace {ws.root} --from {stage}")
        cmd += "".join(f" --set {s}" for s in sets)
        where = "in the region" if regional else "on the whole volume"
        acts.append({"kind": "rerun", "text": f"re-run {stage} and downstream {where}: "
                                               f"{why}", "command": cmd, "stage": stage,
                     "set": sets, "regional": regional})
    acts.append({"kind": "proofread", "text": "proofreading priorities inside the region "
                                              "(refine's list)", "items": _proofread(ws, region)})
    return acts


def _remedy_key(by: dict[str, dict], root: str) -> tuple[str, str]:
    """What to change: the segmentation's error type when L3 shows one (the cheapest fix
    of an image fault is downstream of it), else the root layer's own remedy."""
    votes = 0
    for m in by["L3"]["metrics"] if ORDER.index(root) >= ORDER.index("L3") else []:
        if m["anomalous"] and m["difference"]:
            sign = cat.MERGE_SIGN.get(("L3", m["metric"]))
            if sign is None and m["metric"] in ("single_supervoxel_bodies",
                                                "bodies_ending_inside"):
                sign = -1  # more of these: splits
            votes += int(np.sign(m["difference"])) * (sign or 0)
    if votes:
        return ("L3", "merge" if votes > 0 else "split")
    return (root, by[root]["strongest"]["metric"])


def _proofread(ws: Workspace, region: Roi, limit: int = 50) -> list[dict]:
    if not ws.table_path("proofreading").exists():
        return []
    p = ws.read_table("proofreading")
    p = pl.from_arrow(p) if not isinstance(p, pl.DataFrame) else p
    (bz, by, bx), (ez, ey, ex) = region.begin, region.end
    inside = p.filter(pl.col("z").is_between(bz, ez, closed="left")
                      & pl.col("y").is_between(by, ey, closed="left")
                      & pl.col("x").is_between(bx, ex, closed="left"))
    return inside.sort("rank").head(limit).to_dicts()


def _runs(ws: Workspace, units: pl.DataFrame) -> dict[str, dict]:
    ids_ = sorted(set(units["stage_run_id"].to_list()))
    rows = pl.from_arrow(ProvenanceStore(ws.provenance_path).query(
        "SELECT stage_run_id, stage, layer, status, identity, code_revision, model_id, "
        "region_json, base_stage_run_id, started_at FROM stage_runs "
        "WHERE stage_run_id IN (SELECT unnest(?))", [ids_]))
    return {r["stage_run_id"]: {k: (json.loads(v) if k == "region_json" and v else
                                    (str(v) if v is not None else None))
                                for k, v in r.items() if k != "stage_run_id"}
            for r in rows.to_dicts()}


def traceback_of(root, region: str, reference: str | None = None,
                 name: str = "region") -> dict[str, Any]:
    """``traceback`` from text (``z0:z1,y0:y1,x0:x1``): what the API's ``traceback`` calls."""
    return traceback(Workspace.open(root), Roi.parse(region),
                     Roi.parse(reference) if reference else None, name=name)
