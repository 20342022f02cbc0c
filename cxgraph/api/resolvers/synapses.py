"""synapses(bodyId | box, minConfidence, first, after)."""

from __future__ import annotations

from cxgraph.api.errors import BadInput
from cxgraph.api.limits import First, check_first, check_ids
from cxgraph.api.pagination import decode_cursor, page_of
from cxgraph.api.scalars import Id64
from cxgraph.api.types import (
    AsOf,
    BoxInput,
    Info,
    Synapse,
    SynapseConnection,
    SynapseConnectionPage,
    SynapsePage,
    synapse_key,
)
from cxgraph.graph.coords import point_from_zyx


async def synapses(
    info: Info,
    body_id: Id64 | None = None,
    box: BoxInput | None = None,
    min_confidence: float = 0.0,
    first: First = None,
    after: str | None = None,
    as_of: AsOf = None,
) -> SynapsePage:
    """Synapses of one body (`bodyId`) or inside a box (`box`, voxels, end exclusive),
    by (synapseId, type), one page at a time."""
    ctx = info.context
    first = check_first("synapses", first, ctx.params)
    if (body_id is None) == (box is None):
        raise BadInput("synapses: give exactly one of bodyId or box")
    after_id, after_type = decode_cursor("synapses", after, 2) or (None, None)
    common = {"minConfidence": float(min_confidence), "afterId": after_id,
              "afterType": after_type, "first": first + 1, "asOf": as_of}
    if body_id is not None:
        rows = await ctx.graph.read("api_synapses_of_bodies",
                                    {**common, "ids": [int(body_id)]}, "synapses")
    else:
        if not (box.z0 < box.z1 and box.y0 < box.y1 and box.x0 < box.x1):
            raise BadInput(f"synapses: box must have z0 < z1, y0 < y1, x0 < x1; got "
                           f"[{box.z0}, {box.y0}, {box.x0}, {box.z1}, {box.y1}, {box.x1}]")
        rows = await ctx.graph.read("api_synapses_in_box", {
            **common, "lo": point_from_zyx(box.z0, box.y0, box.x0),
            "hi": point_from_zyx(box.z1, box.y1, box.x1)}, "synapses")
    items, page_info = page_of(rows, first, "synapses", synapse_key)
    return SynapsePage(items=[Synapse.from_record(r) for r in items], page_info=page_info)


async def synapse_connections(
    info: Info,
    pre: list[Id64],
    post: list[Id64] | None = None,
    min_confidence: float = 0.0,
    first: First = None,
    after: str | None = None,
    as_of: AsOf = None,
) -> SynapseConnectionPage:
    """Synapses from a body in `pre` to a body in `post` (null: any body), both sides'
    locations and confidences, by synapseId, one page at a time."""
    ctx = info.context
    first = check_first("synapseConnections", first, ctx.params)
    pre_ids = check_ids("synapseConnections", "pre", [int(b) for b in pre], ctx.params)
    post_ids = None if post is None else check_ids(
        "synapseConnections", "post", [int(b) for b in post], ctx.params)
    (after_id,) = decode_cursor("synapseConnections", after, 1) or (None,)
    rows = await ctx.graph.read("api_synapse_connections", {
        "pre": pre_ids, "post": post_ids, "minConfidence": float(min_confidence),
        "afterId": after_id, "first": first + 1, "asOf": as_of}, "synapseConnections")
    items, page_info = page_of(rows, first, "synapseConnections", lambda r: (r["synapseId"],))
    return SynapseConnectionPage(items=[SynapseConnection.from_record(r) for r in items],
                                 page_info=page_info)
