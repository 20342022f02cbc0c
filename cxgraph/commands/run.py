"""``cxgraph run``: run the pipeline stages on an input directory into a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxgraph.provenance import pipeline_run
from cxgraph.workspace import Workspace


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        input: Annotated[Path, typer.Option("--input", "-i",
                                            help="Tile directory with manifest.json.")],
        workspace: Annotated[Path, typer.Option("--workspace", "-w",
                                                help="Workspace directory (created if missing).")],
        until: Annotated[str | None, typer.Option("--until",
                                                  help="Last stage to run (default: all).")] = None,
        start: Annotated[str | None, typer.Option("--from",
                                                  help="First stage (default: the first).")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a parameter: section.param=value")] = None,
    ) -> None:
        """Run the stages (ingest, stitch, align, ...) in order, recording provenance."""
        from pipeline.stages import run_stages

        overrides = list(set_ or [])
        ws = Workspace.create(workspace)
        if overrides:
            ws.set_config(ws.config.with_overrides(overrides))
        command = " ".join(
            ["cxgraph run", f"--input {input}", f"--workspace {workspace}"]
            + ([f"--until {until}"] if until else []) + ([f"--from {start}"] if start else [])
            + [f"--set {s}" for s in overrides])
        with pipeline_run(ws, command):
            ids = run_stages(ws, input, until=until, start=start)
        for name, run_id in ids.items():
            typer.echo(f"{name}: {run_id}")
