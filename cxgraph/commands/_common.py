"""Options and helpers shared by commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from cxgraph.config import Config
from cxgraph.errors import WorkspaceError
from cxgraph.workspace import Workspace

# No default: a forgotten -w must not make (and start a Neo4j server in) ./workspace.
WorkspaceOpt = typer.Option(..., "--workspace", "-w", help="Workspace directory.")

KeepServerOpt = typer.Option(
    False, "--keep-server",
    help="Leave a Neo4j server this command starts running afterwards (stop it with "
         "`cxgraph neo4j stop -w WS`).")


def open_or_create(path: Path) -> Workspace:
    return Workspace.create(path)


def configured(path: Path, overrides: list[str], region: list[int] | None = None) -> Config:
    """The configuration a command will run with: the workspace's (or the defaults for a
    new one) with ``overrides`` applied and validated — for the blocks meeting ``region``
    only, when one is given (a ``[[regional]]`` entry); nothing is written."""
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{path} is a file, not a workspace directory; pass a "
                             "directory (new or existing) to --workspace")
    base = Workspace.open(path).config if (path / "cxgraph.toml").exists() else Config()
    if not overrides:
        return base
    if not region:
        return base.with_overrides(overrides)
    from pipeline.registry import check_regional

    config = base.with_regional(region, overrides)
    check_regional(config)
    return config


@contextlib.contextmanager
def graph_server(ws: Workspace, keep: bool = False) -> Iterator[None]:
    """The workspace's Neo4j for the length of one command.

    An external server (``NEO4J_URI``) or a managed one already running is used as it is.
    Otherwise the managed server is started, announced on stderr, and stopped when the
    command ends — unless ``keep`` (``--keep-server``); ``cxgraph neo4j start`` is the way
    to keep one running across commands.
    """
    from cxgraph import neo4j_server

    server = neo4j_server.managed_server(ws)
    if neo4j_server.external_connection(ws.config["neo4j"]) or server.pid():
        yield
        return
    typer.echo(f"starting the workspace's Neo4j server ({ws.neo4j_dir}) ...", err=True)
    conn = server.start()
    typer.echo(f"Neo4j running at {conn.uri} (pid {server.pid()}); "
               + ("left running: `cxgraph neo4j stop -w ...` stops it" if keep else
                  "stopped when this command ends"), err=True)
    try:
        yield
    finally:
        if not keep and server.stop():
            typer.echo("Neo4j stopped", err=True)
