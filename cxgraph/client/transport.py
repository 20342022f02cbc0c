"""How a ``Client`` reaches the GraphQL API: over HTTP, or in this process.

Both send the same request (``POST /graphql`` with the bearer token) and get the same
JSON back; the in-process one hands it to the workspace's own ASGI app (``create_app``)
instead of a socket, so auth, limits and errors are the server's, not a copy of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class ClientError(RuntimeError):
    """The API refused or failed a request; the message is the server's."""

    def __init__(self, message: str, errors: list[dict] | None = None, status: int | None = None):
        super().__init__(message)
        self.errors = errors or []
        self.status = status


class HttpTransport:
    """``POST {url}`` with the token, over urllib (no extra dependency)."""

    def __init__(self, url: str, token: str | None, timeout_s: float):
        if "://" not in url:
            url = "http://" + url
        if not url.rstrip("/").endswith("/graphql"):
            url = url.rstrip("/") + "/graphql"
        self.url, self.token, self.timeout_s = url, token, timeout_s

    def post(self, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:  # noqa: S310
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except urllib.error.URLError as e:
            raise ClientError(f"cannot reach the cxgraph API at {self.url} ({e.reason}); is "
                              f"`cxgraph serve` running there?") from None

    def close(self) -> None:
        pass


class WorkspaceTransport:
    """The workspace's API app in this process, on its Neo4j (which must be running:
    nothing is started; ``cxgraph neo4j start --workspace WS`` starts it)."""

    def __init__(self, root: Path, token: str | None):
        from cxgraph.api import create_app
        from cxgraph.graph import GraphStore
        from cxgraph.workspace import Workspace

        ws = Workspace.open(root)
        self.store = GraphStore.for_workspace(ws, start=False)
        self.app = create_app(ws, store=self.store)
        self.token = token

    def post(self, body: bytes) -> tuple[int, bytes]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._call(body))
        # inside a running loop (a notebook): run the request on a loop of its own
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._call(body)).result()

    async def _call(self, body: bytes) -> tuple[int, bytes]:
        headers = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
        if self.token:
            headers.append((b"authorization", f"Bearer {self.token}".encode()))
        scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": headers,
                 "query_string": b""}
        sent = False
        status, chunks = 500, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    def close(self) -> None:
        self.app.close()
        self.store.close()


def execute(transport: HttpTransport | WorkspaceTransport, query: str,
            variables: dict[str, Any] | None) -> dict[str, Any]:
    """The ``data`` of one GraphQL request; any error raises ``ClientError``."""
    status, raw = transport.post(json.dumps({"query": query,
                                             "variables": variables or {}}).encode())
    try:
        body = json.loads(raw)
    except ValueError:
        raise ClientError(f"the API answered HTTP {status} with a body that is not JSON: "
                          f"{raw[:200]!r}", status=status) from None
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        text = "; ".join(e.get("message", str(e)) for e in errors)
        raise ClientError(f"cxgraph API (HTTP {status}): {text}", errors, status)
    if status != 200:
        raise ClientError(f"cxgraph API answered HTTP {status}: {body}", status=status)
    return body["data"]
