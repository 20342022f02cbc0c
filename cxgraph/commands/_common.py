"""Options shared by commands."""

from __future__ import annotations

from pathlib import Path

import typer

from cxgraph.workspace import Workspace

WorkspaceOpt = typer.Option(
    Path("workspace"), "--workspace", "-w", help="Workspace directory (created if missing)."
)


def open_or_create(path: Path) -> Workspace:
    return Workspace.create(path)
