"""``cxgraph demo``: the main job on a synthetic volume, end to end.

A phantom with a staining gradient in one corner is reconstructed through every stage
(L1 ingest .. L5 graph), the traceback compares that corner with the rest of the volume,
the action it suggests is run (a regional re-run), and the corner's synapse recovery
against the phantom's ground truth is printed before and after.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cxgraph.workspace import Workspace

log = logging.getLogger(__name__)

DEMO_FAULTS = ("staining-gradient:toward=y+x+,strength=0.85",)
# dense boutons (as the synapse network's training volumes): enough synapses per block for
# the per-block statistics of a 24 x 384 x 384 volume
DEMO_PHANTOM = {"bouton_spacing_nm": 1000.0}
DEMO_BLOCKS = ["blocks.block_shape=[12,96,96]", "blocks.chunk_shape=[12,96,96]"]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace to create.")]
        = Path("demo-workspace"),
        shape: Annotated[str, typer.Option(help="Volume z,y,x in voxels.")] = "24,384,384",
        seed: Annotated[int, typer.Option(help="Phantom seed.")] = 1,
        keep_server: Annotated[bool, typer.Option(
            "--keep-server", help="Leave Neo4j running for queries afterwards.")] = False,
    ) -> None:
        """Render a phantom with a staining gradient in one corner, reconstruct it, trace the
        corner's difference back to its layer, re-process the corner and show the effect."""
        run_demo(workspace, tuple(int(s) for s in shape.split(",")), seed, keep_server)


def corner_of(shape: tuple[int, int, int], block: tuple[int, int, int]) -> str:
    """The y+x+ quarter of the volume, on block boundaries."""
    z, y, x = shape
    y0 = (y // 2) // block[1] * block[1]
    x0 = (x // 2) // block[2] * block[2]
    return f"0:{z},{y0}:{y},{x0}:{x}"


def run_demo(root: Path, shape: tuple[int, int, int], seed: int, keep_server: bool) -> None:
    from cxgraph.commands._common import graph_server
    from cxgraph.commands.traceback import print_report
    from cxgraph.graph.store import GraphStore
    from cxgraph.provenance import pipeline_run
    from cxgraph.run_summary import render, summarise
    from pipeline.engine import Roi
    from pipeline.phantom import PhantomParams, render_phantom
    from pipeline.registry import run_pipeline
    from pipeline.traceback.engine import traceback
    from pipeline.traceback.flag import flag_region
    from pipeline.traceback.report import write_report

    console = Console()
    t0 = time.perf_counter()
    ws = Workspace.create(root)
    # the embedded defaults everywhere: a previous demo's regional re-run is not kept
    config = ws.config.without_regional().with_overrides(DEMO_BLOCKS)
    phantom = config["phantom"].replace(seed=seed, shape=shape, faults=DEMO_FAULTS,
                                        **DEMO_PHANTOM)
    ws.set_config(config.replace("phantom", phantom))
    input_dir = ws.root / "input"
    corner = corner_of(shape, ws.config["blocks"].block_shape)
    roi = Roi.parse(corner)

    console.rule("[bold]1. synthetic microscope")
    if _same_phantom(input_dir, phantom):
        console.print(f"phantom already rendered in {input_dir}")
    else:
        res = render_phantom(input_dir, PhantomParams.from_dict(phantom.to_dict()), preview=True)
        console.print(f"{res.n_bodies} bodies, {res.n_synapses} synapses, {res.n_tiles} tiles, "
                      f"faults: {[f['spec'] for f in res.faults]}")

    with graph_server(ws, keep_server):
        console.rule("[bold]2. reconstruction, L1 -> L5 (every stage, then the graph)")
        with pipeline_run(ws, f"demo {root}"):
            results = run_pipeline(ws, {"tile_dir": input_dir})
        render(console, summarise(ws, results), ws)
        before = _scores(ws, input_dir, roi)

        console.rule(f"[bold]3. traceback: the corner {corner} vs the rest of the volume")
        report = traceback(ws, roi, name="demo-corner")
        with GraphStore.for_workspace(ws) as store:
            if report["root_cause_layer"]:
                flag_region(store, report)
        html, _ = write_report(report, ws.root / "reports" / "corner")
        print_report(console, report)
        console.print(f"report: {html}", markup=False, highlight=False)

        rerun = next((a for a in report["actions"] if a["kind"] == "rerun"), None)
        after = None
        if rerun:
            console.rule(f"[bold]4. regional re-run: {rerun['command']}", characters="-")
            regional = rerun["regional"]
            ws.set_config(ws.config.with_regional(roi.as_list(), rerun["set"]) if regional
                          else ws.config.with_overrides(rerun["set"]))
            with pipeline_run(ws, rerun["command"]):
                results = run_pipeline(ws, start=rerun["stage"],
                                       region=roi if regional else None)
            render(console, summarise(ws, results), ws)
            after = _scores(ws, input_dir, roi)
            again = traceback(ws, roi, name="demo-corner")
            write_report(again, ws.root / "reports" / "corner-after-rerun")
            console.print(f"traceback after the re-run: {again['conclusion']}, root cause "
                          f"{again['root_cause_layer'] or 'none'}")

    console.rule("[bold]5. summary")
    _print_table(console, "what each layer made", ["layer", "what", "count"], _counts(ws))
    _print_table(console, "the corner against the phantom's ground truth",
                 ["", "true synapses", "detected", "recall", "precision", "F (own seg.)",
                  "F (true seg.)", "recall, rest of volume"],
                 [(label, *row) for label, row in (("before", before), ("after re-run", after))
                  if row])
    console.print(f"root cause found: {report['root_cause_layer'] or 'none'} "
                  f"({report['conclusion']}); report {html}", markup=False, highlight=False)
    console.print(
        "\nquery the result:\n"
        f"  GraphQL   cxgraph serve -w {root}   (then http://127.0.0.1:8700/graphql)\n"
        f"  Cypher    cxgraph cypher -w {root} 'MATCH (r:Region) RETURN r.name, r.flags'\n"
        f"  look      cxgraph view -w {root}", markup=False, highlight=False)
    console.print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; workspace: {ws.root}",
                  markup=False, highlight=False)


def _scores(ws: Workspace, input_dir: Path, roi) -> tuple:
    """Synaptic-partner scores in the corner (with the pipeline's segmentation, and with
    the true one: detection alone) and recall elsewhere (pipeline/synapses/evaluate)."""
    from pipeline.synapses.evaluate import score_workspace

    inside = score_workspace(ws, input_dir, roi)
    detection = score_workspace(ws, input_dir, roi, true_segmentation=True)
    outside = score_workspace(ws, input_dir, roi, outside=True)
    return (inside["truths"], inside["predictions"], f"{inside['recall']:.2f}",
            f"{inside['precision']:.2f}", f"{inside['f']:.2f}", f"{detection['f']:.2f}",
            f"{outside['recall']:.2f}")


def _counts(ws: Workspace) -> list[tuple]:
    import pyarrow.parquet as pq

    def rows(name: str) -> int | str:
        path = ws.table_path(name)
        return pq.ParquetFile(path).metadata.num_rows if path.exists() else "-"

    return [("L1", "tiles", rows("tiles")),
            ("L2", "aligned sections", ws.array("aligned").shape[0]),
            ("L3", "supervoxels", rows("supervoxels")), ("L3", "bodies", rows("bodies")),
            ("L4", "synapses", rows("synapses")), ("L4", "proofreading tasks",
                                                   rows("proofreading")),
            ("L5", "connections", rows("connections"))]


def _same_phantom(input_dir: Path, phantom) -> bool:
    record = input_dir / "phantom.json"
    if not (input_dir / "manifest.json").exists() or not record.exists():
        return False
    saved = json.loads(record.read_text())
    return saved.get("params", saved) == json.loads(json.dumps(phantom.to_dict()))


def _print_table(console: Console, title: str, columns, rows) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(str(c))
    for r in rows:
        t.add_row(*[str(v) for v in r])
    console.print(t)
