"""Options shared by commands."""

from __future__ import annotations

from pathlib import Path

import typer

from cxgraph.config import Config
from cxgraph.errors import WorkspaceError
from cxgraph.workspace import Workspace

WorkspaceOpt = typer.Option(
    Path("workspace"), "--workspace", "-w", help="Workspace directory (created if missing)."
)


def open_or_create(path: Path) -> Workspace:
    return Workspace.create(path)


def configured(path: Path, overrides: list[str]) -> Config:
    """The configuration a command will run with: the workspace's (or the defaults for a
    new one) with ``overrides`` applied and validated; nothing is written."""
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{path} is a file, not a workspace directory; pass a "
                             "directory (new or existing) to --workspace")
    base = Workspace.open(path).config if (path / "cxgraph.toml").exists() else Config()
    return base.with_overrides(overrides) if overrides else base
