"""Opaque cursors for keyset pagination.

A cursor is ``base64url(json([field, key...]))``: the field it belongs to and
the sort key of the last item of a page. Clients must treat it as opaque; the
server rejects a cursor made by another field with a message that says so.
Keyset (not offset) pagination keeps every page an index seek, however deep.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import strawberry

from cxgraph.api.errors import BadInput


@strawberry.type(description="Where a page ends and whether more follows.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page (opaque).")


def encode_cursor(field: str, *key: Any) -> str:
    raw = json.dumps([field, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(field: str, cursor: str | None, arity: int) -> list[Any] | None:
    """The key list of ``cursor`` (``None`` for no cursor); rejects foreign or broken ones."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, TypeError):
        raise BadInput(f"after: {cursor!r} is not a cursor of this API; pass "
                       f"pageInfo.endCursor of a previous {field} page unchanged") from None
    if not isinstance(data, list) or len(data) != arity + 1 or data[0] != field:
        raise BadInput(f"after: this cursor was not made by {field}; pass pageInfo.endCursor "
                       f"of a previous {field} page unchanged")
    return data[1:]


def page_of(rows: list[Any], first: int, field: str, key) -> tuple[list[Any], PageInfo]:
    """Cut ``rows`` (fetched with ``first + 1``) to a page and its ``PageInfo``.

    ``key(row)`` gives the sort key that the cursor of the last row carries.
    """
    items = rows[:first]
    more = len(rows) > first
    cursor = encode_cursor(field, *key(items[-1])) if items else None
    return items, PageInfo(has_next_page=more, end_cursor=cursor)
