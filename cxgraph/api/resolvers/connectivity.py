"""partners, connections and shortestPath."""

from __future__ import annotations

from typing import Annotated

import strawberry

from cxgraph.api.limits import First, check_first, check_hops, check_ids
from cxgraph.api.pagination import decode_cursor, page_of
from cxgraph.api.scalars import Id64
from cxgraph.api.types import (
    AsOf,
    Connection,
    ConnectionPage,
    Direction,
    Info,
    Partner,
    Path,
    load_partners,
)


async def partners(
    info: Info,
    body_id: Id64,
    direction: Direction = Direction.BOTH,
    min_weight: int = 1,
    first: First = None,
    as_of: AsOf = None,
) -> list[Partner]:
    """Bodies connected to `bodyId` with weight >= minWeight, strongest first."""
    return await load_partners(info, body_id, direction, min_weight, first, as_of)


async def connections(
    info: Info,
    pre: list[Id64],
    post: list[Id64] | None = None,
    min_weight: int = 1,
    first: First = None,
    after: str | None = None,
    as_of: AsOf = None,
) -> ConnectionPage:
    """Every connection from a body in `pre` to a body in `post` (null: to any body), by
    (pre, post)."""
    ctx = info.context
    first = check_first("connections", first, ctx.params)
    pre_ids = check_ids("connections", "pre", [int(b) for b in pre], ctx.params)
    post_ids = None if post is None else check_ids("connections", "post",
                                                    [int(b) for b in post], ctx.params)
    after_pre, after_post = decode_cursor("connections", after, 2) or (None, None)
    rows = await ctx.graph.read("api_connections", {
        "pre": pre_ids, "post": post_ids, "minWeight": min_weight, "afterPre": after_pre,
        "afterPost": after_post, "first": first + 1, "asOf": as_of,
    }, "connections")
    items, page_info = page_of(rows, first, "connections", lambda r: (r["pre"], r["post"]))
    return ConnectionPage(
        items=[Connection(pre=r["pre"], post=r["post"], weight=r["weight"],
                          weight_hr=r.get("weightHR"), as_of=as_of) for r in items],
        page_info=page_info)


async def shortest_path(
    info: Info,
    from_: Annotated[Id64, strawberry.argument(name="from")],
    to: Id64,
    min_weight: int = 1,
    max_hops: int | None = None,
    as_of: AsOf = None,
) -> Path | None:
    """A shortest directed path from `from` to `to` over edges with weight >= minWeight,
    at most maxHops long; null when there is none."""
    ctx = info.context
    max_hops = check_hops(max_hops, ctx.params)
    if int(from_) == int(to):
        found = await ctx.loaders.neuron.load((int(from_), as_of))
        return None if found is None else Path(body_ids=[int(from_)], weights=[], as_of=as_of)
    rows = await ctx.graph.read("api_shortest_path", {
        "from": int(from_), "to": int(to), "minWeight": min_weight,
        "asOf": as_of}, "shortestPath")
    if not rows or len(rows[0]["weights"]) > max_hops:
        return None
    return Path(body_ids=rows[0]["bodyIds"], weights=rows[0]["weights"], as_of=as_of)
