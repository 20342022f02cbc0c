"""lineage(bodyId): supervoxels, merges, operations, superseded bodies."""

from __future__ import annotations

from cxgraph.api.limits import check_first
from cxgraph.api.pagination import decode_cursor, page_of
from cxgraph.api.scalars import Id64
from cxgraph.api.types import (
    AsOf,
    Info,
    Lineage,
    Merge,
    MergePage,
    Operation,
    Supervoxel,
    SupervoxelPage,
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


async def supervoxels_page(info: Info, body_id: int, first: int | None,
                           after: str | None) -> SupervoxelPage:
    first = check_first("supervoxels", first, info.context.params)
    (after_sv,) = decode_cursor("supervoxels", after, 1) or (None,)
    rows = await info.context.graph.read("api_supervoxels_of_body", {
        "bodyId": int(body_id), "after": after_sv, "first": first + 1}, "supervoxels")
    items, page_info = page_of(rows, first, "supervoxels", lambda r: (r["sv"]["svId"],))
    return SupervoxelPage(items=[Supervoxel.from_record(r["sv"]) for r in items],
                          page_info=page_info)


async def merges_page(info: Info, body_id: int, first: int | None, after: str | None) -> MergePage:
    first = check_first("merges", first, info.context.params)
    aff, a, b = decode_cursor("merges", after, 3) or (None, None, None)
    rows = await info.context.graph.read("api_merges_of_body", {
        "bodyId": int(body_id), "afterAffinity": aff, "afterA": a, "afterB": b,
        "first": first + 1}, "merges")
    items, page_info = page_of(rows, first, "merges", lambda r: (r["aff"], r["a"], r["b"]))
    return MergePage(items=[Merge.from_record(r) for r in items], page_info=page_info)
