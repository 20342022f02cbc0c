"""A cxgraph server with the neuPrint front door, for tests: the listeners of `cxgraph
serve` (HTTP + HTTPS with the workspace's generated certificate) in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from cxgraph.api import create_app
from cxgraph.api.params import ApiParams
from cxgraph.api.tls import workspace_certificate
from cxgraph.commands.serve import listeners, serve_all


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def door(store, ws, params: ApiParams | None = None) -> Iterator[dict]:
    """``{"url", "http", "cert", "key"}`` of a running server on ``store`` and ``ws``."""
    cert, key = workspace_certificate(ws.root)
    app = create_app(ws, store=store, params=params or ApiParams(timeout_s=20.0))
    http_port, https_port = free_port(), free_port()
    servers = listeners(app, "127.0.0.1", http_port, https_port, cert, key)
    thread = threading.Thread(target=asyncio.run, args=(serve_all(servers),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not all(s.started for s in servers):
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield {"url": f"https://127.0.0.1:{https_port}", "http": f"http://127.0.0.1:{http_port}",
               "cert": str(cert), "key": Path(key)}
    finally:
        for s in servers:
            s.should_exit = True
        thread.join(10)
