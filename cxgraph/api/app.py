"""The ASGI application: a small router in front of the GraphQL schema and POST /cypher.

Routes::

    GET  /health     {"status": "ok"}                                  no token needed
    GET  /graphql    GraphiQL for browsers (Accept: text/html)          no token for the page
    GET  /graphiql/<asset>   GraphiQL's vendored scripts and styles     no token
    GET  /graphql?query=...&variables=...   queries only (no mutations)  read token
    POST /graphql    {"query", "variables", "operationName"}             read token (write for
                                                                          mutations)
    POST /cypher     {"query", "params", "timeoutS"} read-only Cypher    read token
    /api/..., /profile  the neuPrint front door (cxgraph/api/neuprint.py)  read token

Every request except ``/health`` and the GraphiQL page needs
``Authorization: Bearer <token>`` unless ``[api] anonymous_role`` is set. A
missing, unknown or revoked token gets 401. Each token has its own limits on
requests in flight and per second (``quota.py``: 429 with ``Retry-After``); a
document with several operations needs ``operationName``; a response larger than
``[api] max_response_bytes`` is refused with 413 and says so. No Starlette: the router is a few
lines, and the GraphQL schema is executed directly with ``schema.execute``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from graphql import GraphQLError, OperationDefinitionNode, parse
from strawberry.types.graphql import OperationType

from cxgraph.api import graphiql
from cxgraph.api.asgi import (
    Receive,
    Scope,
    Send,
    _header,
    _loads,
    _read_body,
    _send,
    _send_json,
    _wants_html,
    cypher_error,
)
from cxgraph.api.auth import Principal, Role, TokenStore
from cxgraph.api.context import Services, get_context
from cxgraph.api.db import ApiGraph
from cxgraph.api.errors import ApiError, BadInput, LimitExceeded, Unauthenticated
from cxgraph.api.neuprint import NeuprintDoor
from cxgraph.api.params import ApiParams
from cxgraph.api.provenance_store import ProvenanceReader
from cxgraph.api.quota import Quotas, TooManyRequests
from cxgraph.api.schema import build_schema
from cxgraph.errors import (
    ConfigError,
    CxgraphError,
    GraphError,
)

log = logging.getLogger(__name__)



class ApiApp:
    """The ASGI app of ``cxgraph serve``; see the module docstring for its routes."""

    def __init__(self, store: Any, workspace_root: Path, params: ApiParams | None = None,
                 tokens: TokenStore | None = None, close_store: bool = False,
                 traceback: Callable[..., dict] | None = None):
        self.params = params or ApiParams()
        self.root = Path(workspace_root)
        self.graph = ApiGraph(store, self.params)
        self.services = Services(graph=self.graph, params=self.params,
                                 provenance=ProvenanceReader(workspace_root),
                                 traceback=traceback)
        self.tokens = tokens or TokenStore.for_workspace(workspace_root)
        self.anonymous = (Role.parse(self.params.anonymous_role)
                          if self.params.anonymous_role else None)
        self.schema = build_schema(self.params)
        self.quotas = Quotas(self.params)
        self._close_store = close_store
        self._store = store
        self.neuprint = NeuprintDoor(self)

    # --- ASGI ------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        try:
            if path == "/health" and method == "GET":
                await _send_json(send, 200, {"status": "ok"})
            elif path == "/graphql" and method == "GET" and _wants_html(scope):
                await _send(send, 200, graphiql.page(), "text/html; charset=utf-8",
                            {"Cache-Control": "no-cache"})
            elif path.startswith("/graphiql/") and method == "GET":
                asset = graphiql.asset(path.removeprefix("/graphiql/"),
                                       "gzip" in (_header(scope, b"accept-encoding") or ""))
                if asset is None:
                    await _send_json(send, 404, {"error": f"no GraphiQL asset {path}"})
                else:
                    data, ctype, headers = asset
                    await _send(send, 200, data, ctype, headers)
            elif path == "/graphql" and method in ("GET", "POST"):
                principal = self._authenticate(scope)
                async with self.quotas.hold(principal):
                    await self._graphql(scope, receive, send, principal)
            elif path == "/cypher" and method == "POST":
                principal = self._authenticate(scope)
                async with self.quotas.hold(principal, cypher=True):
                    await self._cypher(receive, send, principal)
            elif self.neuprint.handles(path):
                await self.neuprint(scope, receive, send)
            elif path in ("/graphql", "/cypher", "/health") or path.startswith("/graphiql/"):
                await _send_json(send, 405, {"error": f"{method} is not allowed on {path}"})
            else:
                await _send_json(send, 404, {"error": f"no route {path}; try /graphql, "
                                                      f"/cypher, /health or /api/..."})
        except ApiError as e:
            extra = {"WWW-Authenticate": "Bearer"} if isinstance(e, Unauthenticated) else {}
            if isinstance(e, TooManyRequests):
                extra = {"Retry-After": str(max(1, round(e.retry_after_s + 0.5)))}
            await _send_json(send, e.http_status,
                             {"errors": [{"message": str(e), "extensions": e.extensions}]},
                             extra)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.graph.warm()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        self.graph.close()
        if self._close_store:
            self._store.close()

    # --- auth ------------------------------------------------------------------------
    def _authenticate(self, scope: Scope) -> Principal:
        header = _header(scope, b"authorization")
        if header is None:
            if self.anonymous is not None:
                return Principal(token_id="", name="anonymous", role=self.anonymous)
            raise Unauthenticated(
                "no bearer token: send `Authorization: Bearer <token>`; an admin creates one "
                "with `cxgraph token create --workspace WS --role read`")
        scheme, _, token = header.partition(" ")
        principal = self.tokens.authenticate(token) if scheme.lower() == "bearer" else None
        if principal is None:
            raise Unauthenticated("the bearer token is unknown or revoked; ask an admin for a "
                                  "new one (`cxgraph token list` shows the valid ids)")
        return principal

    # --- GraphQL ---------------------------------------------------------------------
    async def _graphql(self, scope: Scope, receive: Receive, send: Send,
                       principal: Principal) -> None:
        if scope["method"] == "GET":
            qs = parse_qs(scope.get("query_string", b"").decode())
            request = {k: v[0] for k, v in qs.items()}
            if "variables" in request:
                request["variables"] = _loads(request["variables"], "variables")
            allowed = (OperationType.QUERY,)
        else:
            request = _loads(await _read_body(receive), "request body")
            allowed = (OperationType.QUERY, OperationType.MUTATION)
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            raise BadInput('expected a JSON object {"query": "...", "variables": {...}}')
        variables = request.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise BadInput("variables must be a JSON object")
        operation = request.get("operationName")
        if operation is not None and not isinstance(operation, str):
            raise BadInput(f"operationName must be a string, got {operation!r}")
        if not operation:
            self._one_operation(request["query"])
        t0 = time.perf_counter()
        try:
            result = await self.schema.execute(
                request["query"], variable_values=variables,
                context_value=get_context(self.services, principal),
                operation_name=operation or None, allowed_operation_types=allowed)
        except Exception as e:  # strawberry raises for a missing/unsupported operation
            raise BadInput(f"{e}; mutations need POST" if scope["method"] == "GET"
                           else str(e)) from e
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [format_error(e) for e in result.errors]
        log.debug("graphql %.1f ms, %d errors", 1e3 * (time.perf_counter() - t0),
                  len(result.errors or []))
        await self._send_capped(send, body)

    def _one_operation(self, text: str) -> None:
        """Refuse a document with several operations and no operationName (graphql-core
        would otherwise run the first one, silently)."""
        try:
            doc = parse(text, no_location=True, max_tokens=self.params.max_tokens)
        except GraphQLError:
            return  # strawberry reports the syntax or size error itself
        names = [d.name.value if d.name else "(anonymous)" for d in doc.definitions
                 if isinstance(d, OperationDefinitionNode)]
        if len(names) > 1:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5
                                            else "")
            raise BadInput(f"the document has {len(names)} operations ({shown}); say which "
                           f"to run with \"operationName\"", operations=len(names))

    async def _send_capped(self, send: Send, body: Any) -> None:
        data = json.dumps(body, separators=(",", ":"), default=str).encode()
        cap = self.params.max_response_bytes
        if len(data) > cap:
            del data
            raise LimitExceeded(
                "response_bytes", f"the response would be larger than the response-size limit "
                f"of {cap} bytes.", maximum=cap, got=None,
                hint="ask for fewer or smaller values: smaller pages (first), fewer fields, "
                     "ids instead of whole objects")
        await _send(send, 200, data, "application/json")

    # --- Cypher ----------------------------------------------------------------------
    async def _cypher(self, receive: Receive, send: Send, principal: Principal) -> None:
        request = _loads(await _read_body(receive), "request body")
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            raise BadInput('expected a JSON object {"query": "MATCH ...", "params": {...}}')
        params = request.get("params") or {}
        if not isinstance(params, dict):
            raise BadInput("params must be a JSON object")
        timeout = self._timeout(request.get("timeoutS"))
        try:
            body = await self.graph.analyst_json(request["query"], params, timeout)
        except GraphError as e:
            code, status, text = cypher_error(e, timeout)
            await _send_json(send, status, {"error": text, "code": code})
            return
        await _send(send, 200, body, "application/json")

    def _timeout(self, value: Any) -> float:
        """``timeoutS`` of a /cypher request: seconds in (0, [api] timeout_s]; larger values
        are lowered to the limit, anything else is a BAD_INPUT error."""
        limit = self.params.timeout_s
        if value is None:
            return limit
        if isinstance(value, str):  # "5" is as good as 5
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= 0:
            raise BadInput(f"timeoutS: expected a number of seconds, 0 < timeoutS <= "
                           f"{limit:g}, got {value!r}", field="timeoutS")
        return min(float(value), limit)


def format_error(error: GraphQLError) -> dict[str, Any]:
    """A GraphQL error as JSON, with the API error's extensions (code, limit, hint)."""
    out = error.formatted
    orig = error.original_error
    if isinstance(orig, ApiError):
        out["extensions"] = {**(out.get("extensions") or {}), **orig.extensions}
    elif isinstance(orig, CxgraphError):
        out["extensions"] = {**(out.get("extensions") or {}), "code": type(orig).__name__}
    elif orig is not None:
        log.error("internal error in %s", out.get("path"), exc_info=orig)
        out["message"] = f"internal error ({type(orig).__name__}); it is logged on the server"
        out["extensions"] = {"code": "INTERNAL"}
    elif error.message.startswith("Syntax Error: Document contains more than"):
        hint = "send a shorter query: fewer fields, or split it into several requests"
        out["message"] += f" Hint: {hint}"
        out["extensions"] = {"code": "LIMIT_EXCEEDED", "limit": "tokens", "hint": hint}
    elif "aliases found. Allowed:" in error.message:
        hint = "use fewer aliases: ask for several ids in one field (neurons(filter: " \
               "{bodyIds: [...]}), connections(pre, post)) instead of one alias per id"
        out["message"] += f" Hint: {hint}"
        out["extensions"] = {"code": "LIMIT_EXCEEDED", "limit": "aliases", "hint": hint}
    return out


def create_app(ws: Any, store: Any | None = None, params: ApiParams | None = None,
               traceback: Callable[..., dict] | None = None) -> ApiApp:
    """The app of a workspace: its ``[api]`` settings, token file and graph store.

    ``store`` (a ``GraphStore``) defaults to the workspace's Neo4j, closed with the app.
    ``traceback(root, region, reference, name) -> report`` answers the ``traceback``
    query (the pipeline's, given by ``cxgraph serve``: the API itself does not import the
    pipeline).
    """
    from cxgraph.graph import GraphStore

    if params is None:
        try:
            params = ws.config["api"]
        except ConfigError:
            params = ApiParams()
    own = store is None
    if own:
        store = GraphStore.for_workspace(ws)
    return ApiApp(store, ws.root, params, close_store=own, traceback=traceback)
