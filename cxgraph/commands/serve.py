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


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        workspace: Path = WorkspaceOpt,
        host: str = typer.Option(None, help="Interface to listen on (default [api] host, "
                                            "127.0.0.1)."),
        port: int = typer.Option(None, help="Port (default [api] port, 8700)."),
        workers: int = typer.Option(1, help="uvicorn worker processes."),
        keep_server: bool = KeepServerOpt,
    ) -> None:
        """Serve GraphQL (/graphql, GraphiQL in a browser) and read-only Cypher (/cypher)."""
        import uvicorn

        from cxgraph.api import create_app

        ws = Workspace.open(workspace)
        params = ws.config["api"]
        if workers != 1:
            raise ConfigError("--workers > 1 is not supported yet; run several `cxgraph serve` "
                              "behind a proxy instead (the API is stateless)")
        h, p = host or params.host, port or params.port
        with graph_server(ws, keep_server):
            from pipeline.traceback.engine import traceback_of

            app_ = create_app(ws, params=params, traceback=traceback_of)
            n = len([r for r in app_.tokens.records() if not r.revoked])
            typer.echo(f"cxgraph API on http://{h}:{p}/graphql ({n} active token(s); "
                       f"anonymous access {params.anonymous_role or 'off'}); Ctrl-C stops it")
            uvicorn.run(app_, host=h, port=p, log_level="warning", access_log=False)

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
