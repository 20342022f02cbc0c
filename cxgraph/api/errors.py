"""Errors the API reports to its clients, as GraphQL errors with ``extensions.code``.

They extend cxgraph's one hierarchy (``cxgraph.errors``). Every message says what
was asked, which rule it broke, and how to narrow or fix the request.
"""

from __future__ import annotations

from typing import Any

from cxgraph.errors import CxgraphError


class ApiError(CxgraphError):
    """An expected failure of one request; ``extensions`` go to the client verbatim."""

    code = "BAD_REQUEST"
    http_status = 400

    def __init__(self, message: str, **extensions: Any):
        super().__init__(message)
        self.extensions = {"code": self.code, **extensions}


class LimitExceeded(ApiError):
    """A request is too big: ``limit`` names the limit, ``max`` its value, ``hint`` the fix."""

    code = "LIMIT_EXCEEDED"

    def __init__(self, limit: str, message: str, *, maximum: Any, got: Any, hint: str):
        super().__init__(f"{message} Hint: {hint}", limit=limit, max=maximum, got=got, hint=hint)


class Unauthenticated(ApiError):
    """No valid bearer token (missing, unknown or revoked)."""

    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(ApiError):
    """The token's role does not allow the operation."""

    code = "FORBIDDEN"
    http_status = 403


class BadInput(ApiError):
    """An argument is malformed (cursor, id, box, direction ...)."""

    code = "BAD_INPUT"


class ReadOnly(ApiError):
    """A write was sent to a read-only entry (POST /cypher)."""

    code = "READ_ONLY"
    http_status = 403
