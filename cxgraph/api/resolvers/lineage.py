"""lineage(bodyId): supervoxels, merges, operations, superseded bodies."""

from __future__ import annotations

from cxgraph.api.scalars import Id64
from cxgraph.api.types import (
    AsOf,
    Info,
    Lineage,
    Operation,
)


async def lineage(info: Info, body_id: Id64, as_of: AsOf = None) -> Lineage | None:
    """Where a body came from (any body, current or retired); null for an unknown id.
    `asOf` leaves out operations and successors after that version."""
    rows = await info.context.graph.read(
        "api_lineage", {"bodyId": int(body_id), "asOf": as_of}, "lineage")
    if not rows:
        return None
    r = rows[0]
    return Lineage(
        body_id=int(body_id), valid_from=r["b"].get("validFrom"), valid_to=r["b"].get("validTo"),
        operations=sorted((Operation.from_record(o) for o in r["operations"]),
                          key=lambda o: (o.version or 0, o.operation_id)),
        supersedes=sorted(r["supersedes"]), superseded_by=sorted(r["supersededBy"]),
        supervoxel_count=r["supervoxelCount"], as_of=as_of)
