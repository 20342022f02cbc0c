"""Graph commands: ``load``, ``check``, ``import-connectome``, ``cypher``, ``init-graph``,
``queries``."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cxgraph.commands._common import (
    KeepServerOpt,
    WorkspaceOpt,
    graph_server,
    open_or_create,
)
from cxgraph.errors import GraphError
from cxgraph.workspace import Workspace


def _store(ws: Any):
    from cxgraph.graph.store import GraphStore

    return GraphStore.for_workspace(ws)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` strings to parameters; ``v`` is JSON when it parses (numbers, lists,
    null, true), else a string: ``bodyId=5``, ``ids=[1,2]``, ``name=AVAL``."""
    out: dict[str, Any] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise GraphError(f"--param {p!r}: expected name=value, e.g. --param bodyId=5")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def format_result(columns: list[str], rows: list[list[Any]], fmt: str) -> str:
    """Rows as text: ``table``, ``csv`` (nested values as JSON) or ``json`` (records)."""
    if fmt == "json":
        return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=1,
                          default=str)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")  # $(...) in a shell keeps no stray \r
        w.writerow(columns)
        for r in rows:
            w.writerow([json.dumps(v) if isinstance(v, (dict, list)) else v for v in r])
        return buf.getvalue()
    from rich.console import Console
    from rich.table import Table

    t = Table(*columns)
    for r in rows:
        t.add_row(*[json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in r])
    console = Console(file=io.StringIO(), width=200)
    console.print(t)
    console.print(f"{len(rows)} row(s)")
    return console.file.getvalue()  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    @app.command("init-graph")
    def init_graph(
        workspace: Path = WorkspaceOpt,
        clear: Annotated[bool, typer.Option("--clear", help="Delete every node first (keeps the "
                                   "schema). Irreversible.")] = False,
        keep_server: bool = KeepServerOpt,
    ) -> None:
        """Apply the graph schema (schema/neo4j/*.cypher) and print its version."""
        ws = Workspace.open(workspace)
        with graph_server(ws, keep_server), _store(ws) as store:
            if clear:
                store.clear()
            new = store.apply_schema()
            typer.echo(f"graph schema version {store.schema_version()}"
                       + (f" (applied {new})" if new else " (up to date)"))

    @app.command("load")
    def load(
        workspace: Path = WorkspaceOpt,
        ground_truth: Annotated[Path | None, typer.Option("--ground-truth", help="Load a phantom's "
                                          "DIR/gt/ instead of the workspace tables.")] = None,
        note: Annotated[str, typer.Option(help="Note stored on the new version.")] = "",
        bulk: Annotated[bool, typer.Option(
            help="First load into an empty database through neo4j-admin import "
                 "(stops and restarts the managed server).")] = False,
        check: Annotated[bool | None, typer.Option(
            "--check/--no-check",
            help="Run the consistency checks afterwards (default: [graph] check_after_load).",
        )] = None,
        keep_server: bool = KeepServerOpt,
    ) -> None:
        """Load the workspace's tables (or a phantom's ground truth) as a graph version.

        The workspace's tables go through the pipeline's ``graph`` stage (recorded in
        provenance, with L5 quality; a no-op when the graph already holds them)."""
        from cxgraph.graph import snapshot as snap_mod
        from cxgraph.graph.consistency import check_graph
        from cxgraph.graph.loader import load_snapshot

        ws = open_or_create(workspace) if ground_truth else Workspace.open(workspace)
        params = ws.config["graph"]
        do_check = check if check is not None else params.check_after_load
        with graph_server(ws, keep_server):
            if not ground_truth and not bulk:
                from cxgraph.provenance import pipeline_run
                from pipeline.registry import run_pipeline

                if do_check != params.check_after_load:
                    ws.set_config(ws.config.replace("graph", params.replace(
                        check_after_load=do_check)))
                with pipeline_run(ws, f"cxgraph load --workspace {workspace}"):
                    (res,) = run_pipeline(ws, only=["graph"])
                typer.echo(f"graph: {res.action} {res.stage_run_id} ({res.seconds:.1f} s)")
                return
            snap = (snap_mod.from_ground_truth(ground_truth) if ground_truth
                    else snap_mod.from_workspace(ws))
            if bulk:
                from cxgraph.graph.bulk import bulk_load_workspace

                report = bulk_load_workspace(ws, snap, params)
            else:
                with _store(ws) as store:
                    report = load_snapshot(store, snap, params, note=note)
            typer.echo(json.dumps(report.to_dict()))
            if do_check:
                with _store(ws) as store:
                    cr = check_graph(store, None if ground_truth else ws.tables_dir)
                typer.echo(cr.summary())
                if not cr.ok:
                    raise typer.Exit(1)

    @app.command("check")
    def check_cmd(
        workspace: Path = WorkspaceOpt,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        keep_server: bool = KeepServerOpt,
    ) -> None:
        """Consistency checks: weights = synapse counts, body pre/post, synapse bodies."""
        from cxgraph.graph.consistency import check_graph

        ws = Workspace.open(workspace)
        with graph_server(ws, keep_server), _store(ws) as store:
            report = check_graph(store, ws.tables_dir)
        typer.echo(json.dumps(report.to_dict(), default=str) if as_json else report.summary())
        if not report.ok:
            raise typer.Exit(1)

    rois = typer.Typer(help="ROIs (named regions) of the graph: boxes or labels of a label "
                            "volume, in WS/rois.json; the next `cxgraph load` applies them.",
                       no_args_is_help=True)
    app.add_typer(rois, name="roi")

    @rois.command("add")
    def roi_add(
        name: str = typer.Argument(..., help="The ROI's name, e.g. 'AL(R)'."),
        workspace: Path = WorkspaceOpt,
        box: str = typer.Option(None, help="z0:z1,y0:y1,x0:x1 in voxels (half-open)."),
        labels: str = typer.Option(None, help="A label volume: an array of volumes.zarr or "
                                              "a .npy file, over the segmentation's extent."),
        label: int = typer.Option(None, help="The ROI's label in --labels."),
        parent: str = typer.Option(None, help="A declared ROI this one lies in."),
    ) -> None:
        """Declare an ROI (then `cxgraph load` places synapses in it)."""
        from cxgraph.graph.rois import Roi, add_roi, parse_box

        ws = Workspace.open(workspace)
        if labels and labels.endswith(".npy") and Path(labels).exists():  # from here
            labels = str(Path(labels).resolve())
        add_roi(ws, Roi(name, parent, parse_box(box) if box else None, labels, label))
        typer.echo(f"ROI {name!r} declared in {ws.root / 'rois.json'}; `cxgraph load -w "
                   f"{workspace}` applies it")

    @rois.command("list")
    def roi_list(workspace: Path = WorkspaceOpt) -> None:
        """The declared ROIs, one JSON object a line."""
        from cxgraph.graph.rois import read_rois

        for r in read_rois(Workspace.open(workspace).root):
            typer.echo(json.dumps(r.to_dict()))

    @rois.command("remove")
    def roi_remove(name: str = typer.Argument(...), workspace: Path = WorkspaceOpt) -> None:
        """Remove a declared ROI (the next `cxgraph load` clears it from the graph)."""
        from cxgraph.graph.rois import remove_roi

        remove_roi(Workspace.open(workspace), name)
        typer.echo(f"ROI {name!r} removed")

    @app.command("import-connectome")
    def import_connectome(
        edges: Annotated[Path | None, typer.Option(
            help="Edge list: pre, post, weight[, type chemical|electrical] (CSV, TSV or "
                 "Parquet; cell names or body ids).")] = None,
        neurons: Annotated[Path | None, typer.Option(
            help="Neuron table: name[, body_id, type, instance, status, kind "
                 "neuron|muscle|other, class] plus any columns, kept as properties. "
                 "See docs/import-connectome.md.")] = None,
        from_cect: Annotated[str | None, typer.Option(
            "--from-cect", help="Build both tables from the `cect` package's dataset, e.g. "
                                "Cook2019Herm (neuron/muscle/other from cect's cell lists).")
        ] = None,
        save_tables: Annotated[Path | None, typer.Option(
            help="With --from-cect: also write DIR/edges.csv and DIR/neurons.csv.")] = None,
        workspace: Path = WorkspaceOpt,
        dataset: Annotated[str | None, typer.Option(
            help="Meta.dataset (default: [graph] dataset).")] = None,
        check: Annotated[bool, typer.Option("--check/--no-check",
                                            help="Run the consistency checks afterwards.")] = True,
        keep_server: bool = KeepServerOpt,
    ) -> None:
        """Load a published connectome (edge list + neuron table) into the graph schema."""
        from cxgraph.errors import InputDataError
        from cxgraph.graph import import_connectome as ic
        from cxgraph.graph.consistency import check_graph
        from cxgraph.graph.loader import load_snapshot

        if (edges is None) == (from_cect is None):
            raise InputDataError("give --edges FILE or --from-cect DATASET (one of them)")
        if save_tables is not None and from_cect is None:
            raise InputDataError("--save-tables needs --from-cect")
        # every table is read and validated before the workspace or the graph is touched
        if from_cect is not None:
            from cxgraph.graph.celegans import cect_tables

            cect_edges, cect_neurons = cect_tables(from_cect)
            if save_tables is not None:
                save_tables.mkdir(parents=True, exist_ok=True)
                cect_edges.write_csv(save_tables / "edges.csv")
                cect_neurons.write_csv(save_tables / "neurons.csv")
                typer.echo(f"wrote {save_tables / 'edges.csv'} and {save_tables / 'neurons.csv'}")
            snap = ic.snapshot_from_edge_list(cect_edges, neurons or cect_neurons,
                                              source=f"cect:{from_cect}")
        else:
            assert edges is not None
            snap = ic.snapshot_from_edge_list(edges, neurons)
        ws = open_or_create(workspace)
        params = ws.config["graph"]
        if dataset:
            params = params.replace(dataset=dataset)
        with graph_server(ws, keep_server), _store(ws) as store:
            report = load_snapshot(store, snap, params)
            typer.echo(ic.format_summary(ic.import_summary(store)))
            typer.echo(json.dumps(report.to_dict()))
            if check:
                cr = check_graph(store)
                typer.echo(cr.summary())
                if not cr.ok:
                    raise typer.Exit(1)

    @app.command("cypher")
    def cypher(
        query: Annotated[str | None, typer.Argument(
            help="Cypher text (in single quotes, so the shell leaves $parameters alone), or "
                 "the name of a query in queries/ (see `cxgraph queries`).")] = None,
        workspace: Path = WorkspaceOpt,
        file: Annotated[Path | None, typer.Option(
            "--file", help="Read the query from this .cypher file instead.")] = None,
        param: Annotated[list[str] | None, typer.Option(
            "--param", "-p", help="name=value (JSON or text); repeat for several.")] = None,
        fmt: Annotated[str, typer.Option(
            "--format", "-f", help="table | csv | json | parquet")] = "table",
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Write here (required for parquet).")] = None,
        timeout: Annotated[float | None, typer.Option(
            help="Seconds (default: [neo4j] query_timeout_s).")] = None,
        keep_server: bool = KeepServerOpt,
    ) -> None:
        """Run a read-only, time-limited Cypher query; values go in --param, never in the text."""
        from cxgraph.graph import queries

        if (query is None) == (file is None):
            raise GraphError("give the query as an argument or with --file QUERY.cypher "
                             "(one of them)")
        if file is not None:
            if not file.is_file():
                raise GraphError(f"--file {file}: no such file")
            query = file.read_text()
        assert query is not None
        named = None
        if file is not None:  # a file with a named query's header gets its defaults too
            try:
                named = queries.parse(query, file.stem, file)
            except GraphError:
                named = None

        if fmt not in ("table", "csv", "json", "parquet"):
            raise GraphError(f"--format {fmt!r}: expected table, csv, json or parquet")
        if fmt == "parquet" and out is None:
            raise GraphError("--format parquet needs --out FILE.parquet")
        params = parse_params(param or [])
        text = query
        if named is not None:
            params = named.bind(params)
        elif query.replace("_", "").isalnum() and query in queries.named_queries():
            nq = queries.get(query)
            text, params = nq.text, nq.bind(params)
        ws = Workspace.open(workspace)
        with graph_server(ws, keep_server), _store(ws) as store:
            res = store.analyst(text, params, timeout_s=timeout)
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {c: [r[i] for r in res.rows] for i, c in enumerate(res.columns)}
            pq.write_table(pa.table(cols), out)
            typer.echo(f"{len(res.rows)} row(s) written to {out}")
            return
        text_out = format_result(res.columns, res.rows, fmt)
        if out:
            out.write_text(text_out)
            typer.echo(f"{len(res.rows)} row(s) written to {out}")
        else:
            sys.stdout.write(text_out if text_out.endswith("\n") else text_out + "\n")

    @app.command("queries")
    def list_queries() -> None:
        """The named queries in queries/: name, parameters and the question each answers."""
        from cxgraph.graph import queries

        for name, q in queries.named_queries().items():
            ps = ", ".join(f"${p.name}" + ("" if p.required else f"={json.dumps(p.default)}")
                           for p in q.params)
            typer.echo(f"{name}({ps})\n    {q.question}")

