"""``cxgraph init`` and ``cxgraph config``: create a workspace and show its parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxgraph.config import Config
from cxgraph.workspace import Workspace


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        workspace: Annotated[Path, typer.Argument(help="Directory to create.")],
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a parameter: section.param=value")] = None,
    ) -> None:
        """Create a workspace with every parameter at its default (see cxgraph.toml)."""
        ws = Workspace.create(workspace, Config().with_overrides(set_ or []))
        typer.echo(f"workspace ready: {ws.root}")

    @app.command("config")
    def show_config(
        workspace: Annotated[Path | None, typer.Option(
            "--workspace", "-w", help="Workspace (default: the defaults).")] = None,
    ) -> None:
        """Print the full configuration (every section and parameter) as TOML."""
        cfg = Workspace.open(workspace).config if workspace else Config()
        typer.echo(cfg.to_toml())

    @app.command("provenance")
    def provenance(
        workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace.")],
        sql: Annotated[str, typer.Argument(help="A read-only SQL query on provenance.duckdb "
                                                "(tables: schema/provenance/*.sql).")]
        = "SELECT stage, status, round(wall_s, 1) AS wall_s, stage_run_id FROM stage_runs "
          "ORDER BY started_at",
    ) -> None:
        """Query the provenance store (stage runs, blocks, quality), read-only."""
        import duckdb

        from cxgraph.commands.graph import format_result

        ws = Workspace.open(workspace)
        with duckdb.connect(str(ws.provenance_path), read_only=True) as con:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description]
            rows = [list(r) for r in cur.fetchall()]
        typer.echo(format_result(columns, rows, "table"), nl=False)
