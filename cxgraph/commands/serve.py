"""``cxgraph serve``, ``cxgraph token create|list|revoke`` and ``cxgraph api export-schema``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from cxgraph.commands._common import KeepServerOpt, WorkspaceOpt, graph_server
from cxgraph.errors import ConfigError
from cxgraph.resources import schema_dir
from cxgraph.workspace import Workspace

log = logging.getLogger(__name__)

SdlOutOpt = typer.Option(None, help="Where to write the SDL (default: the snapshot "
                                    "schema/graphql/schema.graphql).")
TlsCertOpt = typer.Option(None, help="PEM certificate of the HTTPS listener (default "
                                     "WS/tls/cert.pem, self-signed, made on first use).")
TlsKeyOpt = typer.Option(None, help="PEM private key for --tls-cert.")


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        workspace: Path = WorkspaceOpt,
        host: str = typer.Option(None, help="Interface to listen on (default [api] host, "
                                            "127.0.0.1)."),
        port: int = typer.Option(None, help="Port (default [api] port, 8700)."),
        workers: int = typer.Option(1, help="uvicorn worker processes."),
        neuprint_port: int = typer.Option(None, help="HTTPS port of the neuPrint front door "
                                                     "(default [api] neuprint_port, 8701; "
                                                     "0 = off). See docs/neuprint.md."),
        tls_cert: Path = TlsCertOpt,
        tls_key: Path = TlsKeyOpt,
        keep_server: bool = KeepServerOpt,
    ) -> None:
        """Serve GraphQL (/graphql, GraphiQL in a browser), read-only Cypher (/cypher) and,
        over HTTPS, the neuPrint front door for neuprint-python (/api/...)."""
        from cxgraph.api import create_app
        from cxgraph.api.tls import given_certificate, workspace_certificate

        ws = Workspace.open(workspace)
        params = ws.config["api"]
        if workers != 1:
            raise ConfigError("--workers > 1 is not supported yet; run several `cxgraph serve` "
                              "behind a proxy instead (the API is stateless)")
        h, p = host or params.host, port or params.port
        np_port = params.neuprint_port if neuprint_port is None else neuprint_port
        cert = tls_cert or (Path(params.tls_cert) if params.tls_cert else None)
        key = tls_key or (Path(params.tls_key) if params.tls_key else None)
        if np_port and neuprint_port is None and not _can_bind(h, np_port):
            typer.echo(f"port {np_port} ([api] neuprint_port) is in use: the neuPrint front "
                       f"door is off; pick a free one with --neuprint-port", err=True)
            np_port = 0
        if np_port:
            if np_port == p:
                raise ConfigError(f"--neuprint-port {np_port} is the GraphQL port; give the "
                                  f"HTTPS front door its own port (or 0 to turn it off)")
            cert, key = (given_certificate(cert, key) if cert or key
                         else workspace_certificate(ws.root, h))
        with graph_server(ws, keep_server):
            from pipeline.traceback.engine import traceback_of

            app_ = create_app(ws, params=params, traceback=traceback_of)
            n = len([r for r in app_.tokens.records() if not r.revoked])
            typer.echo(f"cxgraph API on http://{h}:{p}/graphql ({n} active token(s); "
                       f"anonymous access {params.anonymous_role or 'off'}); Ctrl-C stops it")
            if np_port:
                typer.echo(f"neuPrint front door on https://{h}:{np_port} (certificate {cert}); "
                           f"neuprint.Client('https://{h}:{np_port}', token=..., "
                           f"verify='{cert}'); navis meshes also need "
                           f"REQUESTS_CA_BUNDLE={cert}")
            run_listeners(app_, h, p, np_port, cert, key)

    tokens = typer.Typer(help="Bearer tokens of the API (stored hashed in WS/api_tokens.json).",
                         no_args_is_help=True)
    app.add_typer(tokens, name="token")

    @tokens.command("create")
    def create(
        workspace: Path = WorkspaceOpt,
        role: str = typer.Option("read", help="read, write or admin."),
        name: str = typer.Option("", help="Who or what the token is for."),
    ) -> None:
        """Mint a token and print it once (only its hash is stored)."""
        from cxgraph.api.auth import TokenStore

        ws = Workspace.open(workspace)
        token, record = TokenStore.for_workspace(ws.root).create(name, role)
        typer.echo(f"token id {record.token_id} ({record.role.value}) for {name or '-'}; "
                   f"shown once, keep it safe:", err=True)
        typer.echo(token)

    @tokens.command("list")
    def list_(
        workspace: Path = WorkspaceOpt,
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Every token: id, role, name, created, revoked (never the token)."""
        from cxgraph.api.auth import TokenStore

        ws = Workspace.open(workspace)
        rows = [{k: v for k, v in r.to_dict().items() if k != "hash"}
                for r in TokenStore.for_workspace(ws.root).records()]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            state = f"revoked {r['revoked']}" if r["revoked"] else "active"
            typer.echo(f"{r['id']}  {r['role']:<5}  {state:<32}  {r['created']}  {r['name']}")

    @tokens.command("revoke")
    def revoke(token_id: str = typer.Argument(..., help="The id shown by `token list`."),
               workspace: Path = WorkspaceOpt) -> None:
        """Revoke a token; a running server refuses it from the next request on."""
        from cxgraph.api.auth import TokenStore

        ws = Workspace.open(workspace)
        record = TokenStore.for_workspace(ws.root).revoke(token_id)
        typer.echo(f"token {record.token_id} revoked at {record.revoked}")

    api = typer.Typer(help="The GraphQL schema.", no_args_is_help=True)
    app.add_typer(api, name="api")

    @api.command("export-schema")
    def export_schema(
        out: Path = SdlOutOpt,
        check: bool = typer.Option(False, help="Only compare; exit 1 if the file differs."),
    ) -> None:
        """Write (or --check) the GraphQL SDL snapshot schema/graphql/schema.graphql."""
        from cxgraph.api.schema import sdl

        text = sdl()
        out = out or schema_dir("graphql") / "schema.graphql"
        if check:
            same = out.exists() and out.read_text() == text
            typer.echo(f"{out}: {'up to date' if same else 'differs from the code'}")
            raise typer.Exit(0 if same else 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        typer.echo(f"wrote {out}")


def _can_bind(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_server((host, port)):
            return True
    except OSError:
        return False


def listeners(app: object, host: str, port: int, https_port: int = 0,
              cert: Path | None = None, key: Path | None = None) -> list:
    """uvicorn servers of ``app``: HTTP on ``port`` and, if ``https_port``, HTTPS with
    ``cert``/``key``. The app's lifespan (start, close) runs with the first only."""
    import uvicorn

    common = {"log_level": "warning", "access_log": False}
    servers = [uvicorn.Server(uvicorn.Config(app, host=host, port=port, **common))]
    if https_port:
        servers.append(uvicorn.Server(uvicorn.Config(
            app, host=host, port=https_port, ssl_certfile=str(cert), ssl_keyfile=str(key),
            # an idle TLS keep-alive connection would hold the shutdown for asyncio's 30 s
            # SSL close timeout; give up on it after a second
            lifespan="off", timeout_graceful_shutdown=1, **common)))
    return servers


async def serve_all(servers: list) -> None:
    """Run the servers in this event loop; when one stops (Ctrl-C), all stop."""
    import asyncio

    tasks = [asyncio.create_task(s.serve()) for s in servers]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*pending)


def run_listeners(app: object, host: str, port: int, https_port: int = 0,
                  cert: Path | None = None, key: Path | None = None) -> None:
    """Serve ``app`` on the ``listeners`` in this process until Ctrl-C."""
    import asyncio

    asyncio.run(serve_all(listeners(app, host, port, https_port, cert, key)))
