"""Writes (role write or admin): annotate a body, flag a region."""

from __future__ import annotations

import contextlib

from cxgraph.api.auth import Role
from cxgraph.api.resolvers.regions import region_from_record
from cxgraph.api.scalars import Id64
from cxgraph.api.types import AnnotateResult, Info, NotFound, Region, load_neuron


async def annotate_neuron(info: Info, body_id: Id64, status: str | None = None,
                          type: str | None = None) -> AnnotateResult:  # noqa: A002
    """Set the status and/or cell type of a current body (null leaves a field unchanged).
    Annotations are labels of the current body, not versioned."""
    ctx = info.context
    ctx.require(Role.WRITE, "annotateNeuron")
    counters = await ctx.graph.write("api_annotate_body", {
        "bodyId": int(body_id), "status": status, "type": type,
        "user": ctx.principal.name or ctx.principal.token_id})
    with contextlib.suppress(KeyError):  # a loaded value of this request is stale now
        ctx.loaders.neuron.clear((int(body_id), None))
    found = await load_neuron(info, body_id, None) if counters else None
    if found is None:
        return NotFound(message=f"no current body {int(body_id)}; retired bodies cannot be "
                                f"annotated (see lineage(bodyId).supersededBy)")
    return found


async def flag_region(info: Info, name: str, flags: list[str],
                      reason: str | None = None) -> Region | None:
    """Replace the QA flags and reason of a named region; null if there is no such region."""
    ctx = info.context
    ctx.require(Role.WRITE, "flagRegion")
    counters = await ctx.graph.write("api_flag_region", {
        "name": name, "flags": list(flags), "reason": reason,
        "user": ctx.principal.name or ctx.principal.token_id})
    if not counters:
        return None
    rows = await ctx.graph.read("api_regions", {}, "regions")
    return next((region_from_record(r["r"]) for r in rows if r["r"]["name"] == name), None)
