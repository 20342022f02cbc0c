"""versions and versionAt: the graph's versions, their times and what made them."""

from __future__ import annotations

import datetime as dt

from cxgraph.api.errors import BadInput
from cxgraph.api.types import GraphVersion, Info


async def versions(info: Info, from_version: int | None = None,
                   to_version: int | None = None) -> list[GraphVersion]:
    """Every graph version (or those in fromVersion..toVersion), oldest first, with its
    creation time, the stage runs it was loaded from and its operations."""
    rows = await info.context.graph.read("api_versions", {"from": from_version,
                                                          "to": to_version}, "versions")
    return [GraphVersion.from_record(r) for r in rows]


async def version_at(info: Info, timestamp: str) -> int | None:
    """The version that was current at `timestamp` (ISO 8601; no UTC offset = UTC): the
    newest complete version created at or before it; null if the graph is younger. Pass
    it as `asOf` to answer as of that time."""
    return (await info.context.graph.read("api_version_at", {"at": utc_iso(timestamp)},
                                          "versionAt") or [{}])[0].get("version")


def utc_iso(value: str) -> str:
    """``value`` (ISO 8601) as an ISO date-time with an offset; naive means UTC."""
    try:
        t = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"versionAt(timestamp: {value!r}): expected an ISO 8601 date-time, "
                       f"e.g. 2026-12-02T17:00:00Z", field="timestamp") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.isoformat()
