"""ASGI plumbing shared by the API's doors (GraphQL/Cypher in app.py, the neuPrint door in
neuprint.py): request and response helpers, and how an analyst Cypher failure is
answered."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from cxgraph.api.db import is_timeout
from cxgraph.api.errors import BadInput, ReadOnly
from cxgraph.errors import (
    GraphError,
    GraphUnavailable,
    QueryRefused,
    QueryTerminated,
    ResultTooLarge,
)

MAX_BODY_BYTES = 1 << 20

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def cypher_error(e: GraphError, timeout: float) -> tuple[str, int, str]:
    """(code, HTTP status, message) of an analyst Cypher failure; a time-out's message
    starts with "timeout" (neuprint-python turns that word into its timeout error)."""
    text = str(e)
    if is_timeout(e):
        return "TIME_LIMIT", 400, (f"timeout: the query ran longer than the time limit of "
                                   f"{timeout:g} s; narrow it (LIMIT, fewer bodies, a smaller "
                                   f"box)\n{text}")
    if isinstance(e, QueryRefused) or "read-only transaction" in text:
        return ReadOnly.code, ReadOnly.http_status, text
    if isinstance(e, ResultTooLarge):
        return "LIMIT_EXCEEDED", 413, text
    if isinstance(e, QueryTerminated):
        return "TERMINATED", 409, text
    if isinstance(e, GraphUnavailable):
        return "UNAVAILABLE", 503, text
    return "CYPHER_ERROR", 400, text


# --- HTTP helpers ------------------------------------------------------------------------
def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def _wants_html(scope: Scope) -> bool:
    return "text/html" in (_header(scope, b"accept") or "") and not scope.get("query_string")


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadInput(f"request body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _loads(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise BadInput(f"{what} is not valid JSON ({e})") from None


async def _send_json(send: Send, status: int, body: Any,
                     headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    await _send(send, status, data, "application/json", headers)


async def _send(send: Send, status: int, data: bytes, content_type: str,
                headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
