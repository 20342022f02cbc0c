"""Writes (role write or admin): annotate a body, flag a region."""

from __future__ import annotations

import contextlib
import json
import unicodedata

from cxgraph.api.auth import Role
from cxgraph.api.errors import BadInput
from cxgraph.api.resolvers.regions import region_from_record
from cxgraph.api.scalars import Id64
from cxgraph.api.types import AnnotateResult, Info, NotFound, Region, load_neuron
from cxgraph.errors import GraphError


async def annotate_neuron(info: Info, body_id: Id64, status: str | None = None,
                          type: str | None = None,  # noqa: A002
                          instance: str | None = None) -> AnnotateResult:
    """Set the type, instance and/or status of a current body (null leaves a field
    unchanged). A change is a new graph version (listed by `versions`, kind annotate), so
    `asOf` an earlier version still answers with the earlier values; setting the values a
    body already has changes nothing."""
    ctx = info.context
    ctx.require(Role.WRITE, "annotateNeuron")
    limit = ctx.params.max_annotation_chars
    values = {k: check_text("annotateNeuron", k, v, limit)
              for k, v in (("type", type), ("instance", instance), ("status", status))}
    state = await ctx.graph.read("api_version_state", {}, "annotateNeuron")
    if state and state[0]["complete"] is False:
        raise BadInput(f"annotateNeuron: the load of graph version {state[0]['version']} is "
                       "still running (or was interrupted); annotate after it completes")
    change = {"bodyId": str(int(body_id)), **{k: v for k, v in values.items() if v is not None}}
    for attempt in range(3):  # two annotations at once may pick the same version number
        try:
            await ctx.graph.write("api_annotate_body", {
                "bodyId": int(body_id), **values, "params": json.dumps(change),
                "user": ctx.principal.name or ctx.principal.token_id})
            break
        except GraphError as e:
            if "ConstraintValidationFailed" not in str(e) or attempt == 2:
                raise
    with contextlib.suppress(KeyError):  # a loaded value of this request is stale now
        ctx.loaders.neuron.clear((int(body_id), None))
    found = await load_neuron(info, body_id, None)
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
