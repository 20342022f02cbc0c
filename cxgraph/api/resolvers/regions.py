"""regions and the flagRegion mutation."""

from __future__ import annotations

from typing import Any

from cxgraph.api.types import AsOf, Info, Region


def region_from_record(r: dict[str, Any]) -> Region:
    return Region(name=r["name"], box=r.get("box"), flags=list(r.get("flags") or []),
                  reason=r.get("reason"))


async def regions(info: Info, as_of: AsOf = None) -> list[Region]:
    """Every named region with its box and QA flags. Regions are not versioned: `asOf`
    is accepted for uniformity and does not change the answer."""
    rows = await info.context.graph.read("api_regions", {}, "regions")
    return [region_from_record(r["r"]) for r in rows]
