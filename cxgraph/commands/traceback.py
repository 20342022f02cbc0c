"""``cxgraph traceback`` (is a region's difference biology or processing?) and
``cxgraph rerun`` (re-process a region from one stage on)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxgraph.commands._common import configured
from cxgraph.workspace import Workspace


def register(app: typer.Typer) -> None:
    @app.command("traceback")
    def traceback_cmd(
        workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace.")],
        region: Annotated[str, typer.Option(help="Target region z0:z1,y0:y1,x0:x1 (voxels).")],
        out: Annotated[Path, typer.Option(help="Report path: writes OUT.html and OUT.json.")],
        reference: Annotated[str | None, typer.Option(
            help="Reference region (default: the rest of the volume).")] = None,
        bodies: Annotated[str | None, typer.Option(
            help="Only these bodies' synapses at L5 (comma-separated ids).")] = None,
        name: Annotated[str, typer.Option(help="Name of the region in the report and graph.")]
        = "region",
        flag: Annotated[bool, typer.Option(
            "--flag/--no-flag", help="Write a Region node with the verdict into the graph.")]
        = True,
    ) -> None:
        """Compare a region with a reference from L5 (graph) down to L1 (images); say which
        layer is the root cause, and what to re-run there."""
        from rich.console import Console

        from pipeline.engine import Roi
        from pipeline.traceback.engine import traceback
        from pipeline.traceback.report import write_report

        ws = Workspace.open(workspace)
        report = traceback(ws, Roi.parse(region), Roi.parse(reference) if reference else None,
                           [int(b) for b in bodies.split(",")] if bodies else None, name)
        if flag and report["root_cause_layer"]:
            _flag(ws, report)
        html, js = write_report(report, out)
        print_report(Console(), report)
        typer.echo(f"report: {html} (and {js})")

    @app.command("rerun")
    def rerun_cmd(
        workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace.")],
        region: Annotated[str, typer.Option(help="Region z0:z1,y0:y1,x0:x1 (voxels).")],
        from_stage: Annotated[str, typer.Option("--from-stage", help="First stage to re-run.")],
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a parameter for the region's blocks only: "
                          "section.param=value (kept in cxgraph.toml as [[regional]])")]
        = None,
    ) -> None:
        """Re-run FROM_STAGE and everything downstream only in the blocks the region touches
        (plus context), then load the changed graph as a new version."""
        from rich.console import Console

        from cxgraph.provenance import pipeline_run
        from cxgraph.run_summary import render, summarise
        from pipeline.engine import Roi
        from pipeline.registry import run_pipeline

        overrides = list(set_ or [])
        if not (workspace / "cxgraph.toml").exists():
            raise typer.BadParameter(f"{workspace} is not a workspace", param_hint="--workspace")
        roi = Roi.parse(region)
        config = configured(workspace, overrides, roi.as_list())
        ws = Workspace.open(workspace)
        ws.check_writable()
        if overrides:
            ws.set_config(config)
        command = (f"cxgraph rerun --workspace {workspace} --region {region} --from-stage "
                   f"{from_stage}" + "".join(f" --set {s}" for s in overrides))
        before = synapses_in(ws, roi)
        with pipeline_run(ws, command):
            results = run_pipeline(ws, start=from_stage, region=roi)
        console = Console()
        render(console, summarise(ws, results), ws)
        after = synapses_in(ws, roi)
        console.print(f"synapses in the region: {before} before, {after} after the re-run")


def synapses_in(ws: Workspace, roi) -> int | None:
    """Synapses whose post site lies in ``roi`` (the tables)."""
    import polars as pl

    path = ws.table_path("synapses")
    if not path.exists():
        return None
    s = pl.read_parquet(path, columns=["post_z", "post_y", "post_x"])
    keep = pl.lit(True)
    for k, c in enumerate(("post_z", "post_y", "post_x")):
        keep &= pl.col(c).is_between(roi.begin[k], roi.end[k], closed="left")
    return s.filter(keep).height


def _flag(ws: Workspace, report: dict) -> None:
    from cxgraph.commands._common import graph_server
    from cxgraph.graph.store import GraphStore
    from pipeline.traceback.flag import flag_region

    with graph_server(ws), GraphStore.for_workspace(ws) as store:
        flag_region(store, report)


def print_report(console, report: dict) -> None:
    from rich.table import Table

    t = Table(title=f"traceback of {report['region']['name']} {report['region']['box']} vs "
                    f"{report['reference']['name']}")
    for col in ("layer", "verdict", "strongest evidence"):
        t.add_column(col)
    for lay in report["layers"]:
        s = lay["strongest"]
        ev = (f"{s['metric']} ({s['stage']}) {_rel(s)} p={s['p_adjusted']:.2g}" if s else "")
        colour = {"anomalous": "red", "differs": "yellow"}.get(lay["verdict"], "green")
        t.add_row(f"{lay['layer']} {lay['name']}", f"[{colour}]{lay['verdict']}", ev)
    console.print(t)
    console.print(f"[bold]{report['conclusion']}[/]; root cause: "
                  f"{report['root_cause_layer'] or 'none'}")
    console.print(report["summary"])
    for a in report["actions"]:
        if a["kind"] == "rerun":
            console.print(f"suggested: {a['command']}")


def _rel(s: dict) -> str:
    return f"{s['relative']:+.0%}" if s["relative"] is not None else f"{s['difference']:+.3g}"
