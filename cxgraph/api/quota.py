"""Per-token limits, so that one token cannot starve the API: requests in flight (all
routes, and POST /cypher apart) and a request rate (token bucket).

A request over a limit is answered at once with HTTP 429, ``extensions.code``
``RATE_LIMITED``, the limit's name, value and a ``Retry-After``; it never queues
behind the token's own slow work. Anonymous callers share one quota. The database
work is split as well (``ApiGraph``): analyst Cypher of all tokens runs in a few worker
processes of its own (``cypher_worker.py``), so GraphQL reads keep their share of the
server whatever Cypher is running.

State lives on the event loop's thread only (the ASGI app is single-loop), so no
lock is needed.

Example::

    >>> import asyncio
    >>> from cxgraph.api.auth import Principal, Role
    >>> from cxgraph.api.params import ApiParams
    >>> q = Quotas(ApiParams(cypher_inflight_per_token=1))
    >>> alice = Principal("a1", "alice", Role.READ)
    >>> async def two_at_once():
    ...     async with q.hold(alice, cypher=True):
    ...         try:
    ...             async with q.hold(alice, cypher=True):
    ...                 pass
    ...         except TooManyRequests as e:
    ...             return e.extensions["limit"]
    >>> asyncio.run(two_at_once())
    'cypher_inflight_per_token'
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from cxgraph.api.auth import Principal
from cxgraph.api.errors import ApiError
from cxgraph.api.params import ApiParams


class TooManyRequests(ApiError):
    """A token is over one of its limits; ``retry_after_s`` says when to try again."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, *, limit: str, maximum: float, retry_after_s: float):
        super().__init__(message, limit=limit, max=maximum, retryAfterS=retry_after_s)
        self.retry_after_s = retry_after_s


@dataclass
class _TokenState:
    inflight: int = 0
    cypher: int = 0
    tokens: float = math.inf  # bucket level; filled to the burst on first use
    stamp: float = field(default_factory=time.monotonic)


class Quotas:
    """The per-token limits of ``[api]``: ``max_inflight_per_token``,
    ``cypher_inflight_per_token``, ``rate_per_s`` with ``rate_burst`` (0 = no rate limit)."""

    def __init__(self, params: ApiParams):
        self.params = params
        self._state: dict[str, _TokenState] = {}

    @contextlib.asynccontextmanager
    async def hold(self, principal: Principal, cypher: bool = False) -> AsyncIterator[None]:
        """Count one request of ``principal`` while it runs, or raise ``TooManyRequests``."""
        p = self.params
        key = principal.token_id or "anonymous"
        st = self._state.setdefault(key, _TokenState())
        who = "anonymous access" if principal.anonymous else f"token {principal.token_id}"
        self._take(st, who)
        if st.inflight >= p.max_inflight_per_token:
            raise TooManyRequests(
                f"{who} already has {st.inflight} requests running; the limit is "
                f"{p.max_inflight_per_token} per token. Hint: wait for one to finish "
                "(or use one request for several ids) and retry",
                limit="max_inflight_per_token", maximum=p.max_inflight_per_token,
                retry_after_s=1.0)
        if cypher and st.cypher >= p.cypher_inflight_per_token:
            raise TooManyRequests(
                f"{who} already has {st.cypher} Cypher queries running; the limit is "
                f"{p.cypher_inflight_per_token} per token. Hint: wait for one to finish, or "
                "narrow slow queries (LIMIT, a smaller box) so they finish sooner",
                limit="cypher_inflight_per_token", maximum=p.cypher_inflight_per_token,
                retry_after_s=1.0)
        st.inflight += 1
        st.cypher += int(cypher)
        try:
            yield
        finally:
            st.inflight -= 1
            st.cypher -= int(cypher)

    def _take(self, st: _TokenState, who: str) -> None:
        """One request from the token's bucket (``rate_per_s`` refill, ``rate_burst`` deep)."""
        p = self.params
        if p.rate_per_s <= 0:
            return
        now = time.monotonic()
        st.tokens = min(float(p.rate_burst), st.tokens + (now - st.stamp) * p.rate_per_s)
        st.stamp = now
        if st.tokens < 1.0:
            wait = round((1.0 - st.tokens) / p.rate_per_s, 3)
            raise TooManyRequests(
                f"{who} sent more than {p.rate_per_s:g} requests/s (burst {p.rate_burst}); "
                f"retry in {wait:g} s. Hint: batch ids into one request",
                limit="rate_per_s", maximum=p.rate_per_s, retry_after_s=wait)
        st.tokens -= 1.0
