"""``cxgraph neo4j install|start|stop|status``: the project-managed Neo4j server."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cxgraph import neo4j_server
from cxgraph.commands._common import WorkspaceOpt
from cxgraph.config import Neo4jParams
from cxgraph.workspace import Workspace


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Install, start, stop and inspect the managed Neo4j server.",
                        no_args_is_help=True)
    app.add_typer(group, name="neo4j")

    @group.command("install")
    def install(
        version: str = typer.Option(Neo4jParams().version, help="Neo4j 5.26 patch release."),
        force: bool = typer.Option(False, help="Re-fetch even if the cache is complete."),
    ) -> None:
        """Fetch Neo4j Community + APOC from Maven Central into the cache (once)."""
        home = neo4j_server.install(version, force=force)
        java, major = neo4j_server.find_java()
        typer.echo(f"Neo4j {version} + APOC in {home} (Java {major}: {java})")

    @group.command("start")
    def start(workspace: Path = WorkspaceOpt) -> None:
        """Start the workspace's server on 127.0.0.1 (auth on) and leave it running for later
        commands, until `cxgraph neo4j stop`; returns once Bolt answers."""
        ws = Workspace.open(workspace)
        conn = neo4j_server.managed_server(ws).start()
        typer.echo(f"Neo4j running at {conn.uri} (user neo4j, password in {ws.neo4j_dir}/password)"
                   f"; it keeps running until `cxgraph neo4j stop -w {workspace}`")

    @group.command("stop")
    def stop(workspace: Path = WorkspaceOpt) -> None:
        """Stop the workspace's server cleanly (SIGTERM, wait)."""
        ws = Workspace.open(workspace)
        was = neo4j_server.managed_server(ws).stop()
        typer.echo("Neo4j stopped" if was else "Neo4j was not running")

    @group.command("status")
    def status(
        workspace: Path = WorkspaceOpt,
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Version, edition, APOC, URI, pid and data directory of the server in use."""
        ws = Workspace.open(workspace)
        conn = neo4j_server.connect(ws, start=False)
        info = neo4j_server.server_info(conn)
        server = neo4j_server.managed_server(ws)
        info |= {"managed": conn.managed, "pid": server.pid() if conn.managed else None,
                 "data_dir": str(server.dir / "data") if conn.managed else None}
        if as_json:
            typer.echo(json.dumps(info, indent=2))
        else:
            for k, v in info.items():
                typer.echo(f"{k:>8}: {v}")
