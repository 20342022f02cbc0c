"""qualityMap(layer, metric): the quality table, filtered, summarised and paged."""

from __future__ import annotations

import asyncio

from cxgraph.api.limits import First, check_first
from cxgraph.api.pagination import decode_cursor, page_of
from cxgraph.api.types import AsOf, Info, QualityCell, QualityMap


async def quality_map(
    info: Info,
    layer: str,
    metric: str,
    stage: str | None = None,
    region: str | None = None,
    first: First = None,
    after: str | None = None,
    as_of: AsOf = None,
) -> QualityMap:
    """Values of one quality metric of one layer (tables/quality.parquet), per block,
    section, tile or region (`region`: one named region's rows only), with
    count/min/max/mean over all matching rows. Without
    `asOf`: every row of the table. With `asOf`: only rows of the stage runs behind graph
    versions <= asOf (the runs a Version was loaded from, and the runs upstream of them)."""
    ctx = info.context
    first = check_first("qualityMap", first, ctx.params)
    (offset,) = decode_cursor("qualityMap", after, 1) or (0,)
    reader = ctx.services.provenance
    runs = None
    if as_of is not None:
        rows = await ctx.graph.read("api_version_stage_runs",
                                    {"asOf": as_of}, "qualityMap")
        loaded = [r["stageRunId"] for r in rows]

        def closure() -> list[str]:
            out = set(loaded)
            for run in loaded:
                out.update(reader.upstream(run))
            return sorted(out)

        runs = await asyncio.to_thread(closure)
    summary, rows = await asyncio.to_thread(reader.quality, layer, metric, stage, runs,
                                            int(offset), first + 1, region)
    items, page_info = page_of(rows, first, "qualityMap", lambda r: (offset + first,))
    return QualityMap(
        layer=layer, metric=metric, count=summary["count"], min=summary["min"],
        max=summary["max"], mean=summary["mean"], page_info=page_info,
        cells=[QualityCell(layer=r["layer"], stage=r["stage"], stage_run_id=r["stage_run_id"],
                           block=r.get("block"), section=r.get("section"), tile=r.get("tile"),
                           region=r.get("region"), value=r.get("value")) for r in items])
