"""Writes (role write or admin): annotate a body, flag a region."""

from __future__ import annotations

import contextlib
import unicodedata

from cxgraph.api.auth import Role
from cxgraph.api.errors import BadInput
from cxgraph.api.resolvers.regions import region_from_record
from cxgraph.api.scalars import Id64
from cxgraph.api.types import AnnotateResult, Info, NotFound, Region, load_neuron


async def annotate_neuron(info: Info, body_id: Id64, status: str | None = None,
                          type: str | None = None) -> AnnotateResult:  # noqa: A002
    """Set the status and/or cell type of a current body (null leaves a field unchanged).
    Annotations are labels of the current body, not versioned."""
    ctx = info.context
    ctx.require(Role.WRITE, "annotateNeuron")
    limit = ctx.params.max_annotation_chars
    status = check_text("annotateNeuron", "status", status, limit)
    type = check_text("annotateNeuron", "type", type, limit)  # noqa: A001
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
    p = ctx.params
    name = check_text("flagRegion", "name", name, p.max_annotation_chars) or ""
    if len(flags) > 64:
        raise BadInput(f"flagRegion(flags: [...]) has {len(flags)} flags; expected at most 64",
                       field="flags")
    flags = [check_text("flagRegion", "flags", f, p.max_annotation_chars) or "" for f in flags]
    reason = check_text("flagRegion", "reason", reason, p.max_reason_chars, lines=True)
    counters = await ctx.graph.write("api_flag_region", {
        "name": name, "flags": list(flags), "reason": reason,
        "user": ctx.principal.name or ctx.principal.token_id})
    if not counters:
        return None
    rows = await ctx.graph.read("api_regions", {}, "regions")
    return next((region_from_record(r["r"]) for r in rows if r["r"]["name"] == name), None)


def check_text(field: str, argument: str, value: str | None, max_chars: int,
               lines: bool = False) -> str | None:
    """An annotation value as given, if it is at most ``max_chars`` characters of printable
    text (newlines and tabs only where ``lines``), else a BAD_INPUT error naming it. Long
    values would otherwise reach Neo4j's index key limit; NUL and control characters
    break every consumer of the labels (CSV, terminals, neuPrint clients)."""
    if value is None:
        return None
    if len(value) > max_chars:
        raise BadInput(f"{field}({argument}: ...) is {len(value)} characters long; the limit "
                       f"is {max_chars}", field=argument, max=max_chars, got=len(value))
    allowed = "\n\t" if lines else ""
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")
                and c not in allowed), None)
    if bad is not None:
        raise BadInput(f"{field}({argument}: ...) contains the control character "
                       f"U+{ord(bad):04X} at position {value.index(bad)}; expected printable "
                       "text", field=argument)
    return value
