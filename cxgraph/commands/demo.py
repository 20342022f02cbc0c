"""``cxgraph demo``: render a synthetic volume and reconstruct it end to end with what exists."""

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

# Layers the pipeline does not have yet; the demo says so rather than pretend.
NOT_BUILT = [
    "L3 segment (U-Net affinities, watershed, agglomeration)",
    "L4 synapse detection and partner assignment",
    "traceback reports",
]

DEMO_FAULTS = ("staining-gradient:toward=y+x+,strength=0.6", "missing-section:z=11")


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
        """Render a phantom, run every built stage on it, load the graph and query it."""
        run_demo(workspace, tuple(int(s) for s in shape.split(",")), seed, keep_server)


def run_demo(root: Path, shape: tuple[int, int, int], seed: int, keep_server: bool) -> None:
    from cxgraph.commands._common import graph_server
    from cxgraph.graph import queries
    from cxgraph.graph.consistency import check_graph
    from cxgraph.graph.loader import load_snapshot
    from cxgraph.graph.snapshot import from_ground_truth
    from cxgraph.graph.store import GraphStore
    from cxgraph.neo4j_server import connect, server_info
    from cxgraph.provenance import pipeline_run
    from cxgraph.run_summary import render, summarise
    from pipeline.align.evaluate import evaluate as evaluate_alignment
    from pipeline.phantom import PhantomParams, render_phantom
    from pipeline.registry import run_pipeline

    console = Console()
    t0 = time.perf_counter()
    ws = Workspace.create(root)
    phantom = ws.config["phantom"].replace(seed=seed, shape=shape, faults=DEMO_FAULTS)
    ws.set_config(ws.config.replace("phantom", phantom))
    input_dir = ws.root / "input"

    console.rule("[bold]1. synthetic microscope")
    if _same_phantom(input_dir, phantom):
        console.print(f"phantom already rendered in {input_dir}")
    else:
        res = render_phantom(input_dir, PhantomParams.from_dict(phantom.to_dict()), preview=True)
        console.print(f"{res.n_bodies} bodies, {res.n_synapses} synapses, {res.n_tiles} tiles, "
                      f"faults: {[f['kind'] for f in res.faults]}")

    console.rule("[bold]2. pipeline stages")
    _affinities_fallback(console, ws)
    with pipeline_run(ws, f"demo {root}"):
        results = run_pipeline(ws, {"tile_dir": input_dir})
    render(console, summarise(ws, results), ws)
    _quality(console, ws)
    scores = evaluate_alignment(ws, input_dir)
    _print_table(console, "alignment vs the phantom's ground truth (px)", ["metric", "value"],
                 [(k, round(v, 2)) for k, v in scores.items()
                  if isinstance(v, float) and k.endswith("_px")])

    console.rule("[bold]3. graph (Neo4j)")
    with graph_server(ws, keep_server), GraphStore.for_workspace(ws) as store:
        info = server_info(connect(ws))
        console.print(f"Neo4j {info['version']} {info['edition']}, APOC {info['apoc']}, "
                      f"at {info['uri']}")
        store.apply_schema()
        report = load_snapshot(store, from_ground_truth(input_dir), ws.config["graph"],
                               note="demo: phantom ground truth (L3/L4 not built yet)")
        _print_table(console, "graph load", ["what", "value"], list(report.to_dict().items()))
        console.print(check_graph(store).summary(), markup=False, highlight=False)
        top = store.read(
            "MATCH (a:Segment)-[c:ConnectsTo]->(b:Segment) WHERE c.validTo IS NULL "
            "RETURN a.bodyId AS pre, b.bodyId AS post, c.weight AS weight "
            "ORDER BY weight DESC, pre, post LIMIT 5")
        _print_table(console, "strongest connections", top.columns, top.rows)
        console.print(f"named queries for analysts: {len(queries.named_queries())} in queries/")

    console.rule("[bold]not built yet")
    for item in NOT_BUILT:
        console.print(f"  - {item}")
    console.print("The graph holds the phantom's ground-truth connectome until L3/L4 exist.")
    console.print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; workspace: {ws.root}\n"
                  f"look at it: cxgraph view -w {root}", markup=False, highlight=False)


def _affinities_fallback(console: Console, ws: Workspace) -> None:
    """Without a trained U-Net (none shipped yet, none configured), run L3 on the baseline
    boundary filter rather than stop: the demo shows every stage that exists."""
    from pipeline.segment.affinities_stage import model_path

    params = ws.config["affinities"]
    try:
        model_path(params)
    except Exception:  # noqa: BLE001 - ConfigError: the model file is missing
        ws.set_config(ws.config.replace("affinities", params.replace(method="baseline")))
        console.print("no trained U-Net model: affinities from the baseline boundary filter "
                      "(affinities.method = \"baseline\"; `cxgraph train segment` makes one)",
                      markup=False, highlight=False)


def _same_phantom(input_dir: Path, phantom) -> bool:
    record = input_dir / "phantom.json"
    if not (input_dir / "manifest.json").exists() or not record.exists():
        return False
    saved = json.loads(record.read_text())
    return saved.get("params", saved) == json.loads(json.dumps(phantom.to_dict()))


def _quality(console: Console, ws: Workspace) -> None:
    from cxgraph.provenance import ProvenanceStore

    store = ProvenanceStore(ws.provenance_path)
    rows = store.execute(
        "SELECT layer, stage, metric, count(*), round(avg(value), 3), round(min(value), 3), "
        "round(max(value), 3) FROM quality GROUP BY ALL ORDER BY layer, stage, metric")
    _print_table(console, "quality (per block / section / tile)",
                 ["layer", "stage", "metric", "n", "mean", "min", "max"], rows)


def _print_table(console: Console, title: str, columns, rows) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(str(c))
    for r in rows:
        t.add_row(*[str(v) for v in r])
    console.print(t)
