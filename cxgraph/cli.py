"""The ``cxgraph`` command line. Each group of commands lives in ``cxgraph/commands/``."""

from __future__ import annotations

import importlib
import logging

import typer

from cxgraph.errors import CxgraphError

app = typer.Typer(
    help="cxgraph: connectome reconstruction into a Neo4j graph, with provenance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Modules in cxgraph/commands/, each with ``register(app)``.
COMMAND_MODULES = [
    "workspace",
    "neo4j",
    "phantom",
    "run",
    "serve",
    "graph",
    "demo",
    "train",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"cxgraph.commands.{_name}").register(app)

# The command line is the top of the stack: it loads the pipeline's stages, which register
# their configuration sections (the core below never imports pipeline/).
importlib.import_module("pipeline.registry").load()


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")):
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Entry point: cxgraph errors print as one clear line and exit 1, not a traceback."""
    try:
        app()
    except CxgraphError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None
    except OSError as e:  # the file system said no (disk full, read-only, permissions)
        where = f" {e.filename}" if e.filename else ""
        typer.secho(f"error:{where}: {e.strerror or e}; fix it and run the same command "
                    "again (finished work is kept)", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None
