"""``cxgraph run``: run the pipeline's stages on an input directory into a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxgraph.commands._common import configured
from cxgraph.provenance import pipeline_run
from cxgraph.workspace import Workspace


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        workspace: Annotated[Path, typer.Option("--workspace", "-w",
                                                help="Workspace directory (created if missing).")],
        input: Annotated[Path | None, typer.Option(
            "--input", "-i", help="Tile directory with manifest.json (default: the one the "
                                  "workspace was last run on).")] = None,
        until: Annotated[str | None, typer.Option("--until",
                                                  help="Last stage to run (default: all).")] = None,
        start: Annotated[str | None, typer.Option("--from",
                                                  help="First stage (default: the first).")] = None,
        region: Annotated[str | None, typer.Option(
            "--region", help="Re-run only the blocks meeting z0:z1,y0:y1,x0:x1 (voxels), "
                             "and in each later stage those within its context of it.")] = None,
        stages: Annotated[str | None, typer.Option(
            "--stages", help="Exactly these stages, comma-separated (also optional ones, "
                             "e.g. smooth).")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a parameter: section.param=value (with --region, for "
                          "the region's blocks only: kept in cxgraph.toml as [[regional]])")
        ] = None,
    ) -> None:
        """Run the stages (ingest, stitch, align, ...) in order, recording provenance.

        A stage whose parameters, inputs and code are unchanged, and whose outputs are
        its own, is not run again; a killed run resumes where it stopped.
        """
        from pipeline.engine import Roi
        from pipeline.registry import run_pipeline

        overrides = list(set_ or [])
        roi = Roi.parse(region) if region else None
        # validate first, write after: a bad --set leaves cxgraph.toml (or a new
        # workspace directory) as it was
        config = configured(workspace, overrides, roi.as_list() if roi else None)
        ws = Workspace.create(workspace, config if overrides else None)
        ws.check_writable()
        only = [s.strip() for s in stages.split(",") if s.strip()] if stages else None
        flags = {"--input": input, "--until": until, "--from": start, "--region": region,
                 "--stages": stages}
        command = " ".join(["cxgraph run", f"--workspace {workspace}"]
                           + [f"{k} {v}" for k, v in flags.items() if v]
                           + [f"--set {s}" for s in overrides])
        with pipeline_run(ws, command):
            results = run_pipeline(ws, {"tile_dir": input} if input else None, start=start,
                                   until=until, region=roi, only=only)
        from rich.console import Console

        from cxgraph.run_summary import render, summarise

        render(Console(), summarise(ws, results), ws)
