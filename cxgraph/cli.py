"""The ``cxgraph`` command line. Each group of commands lives in ``cxgraph/commands/``."""

from __future__ import annotations

import importlib
import logging

import typer

from cxgraph.errors import CxgraphError

# Plain click help: rich markup would eat "[api]" in help texts and show flags as <bool>.
app = typer.Typer(
    help="cxgraph: connectome reconstruction into a Neo4j graph, with provenance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)

# Modules in cxgraph/commands/, each with ``register(app)``.
COMMAND_MODULES = [
    "workspace",
    "neo4j",
    "phantom",
    "run",
    "serve",
    "graph",
    "view",
    "demo",
    "train",
    "traceback",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"cxgraph.commands.{_name}").register(app)

# The command line is the top of the stack: it loads the pipeline's stages, which register
# their configuration sections (the core below never imports pipeline/).
importlib.import_module("pipeline.registry").load()


class _TqdmHandler(logging.StreamHandler):
    """Log lines printed above any progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(verbose: int) -> None:
    """Default: warnings only (results go to stdout, bars to stderr); ``-v``: cxgraph's own
    progress lines; ``-vv``: debug detail from everything, third-party libraries included."""
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    for name in ("cxgraph", "pipeline"):
        logging.getLogger(name).setLevel(
            logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING)
    # the Neo4j driver logs each retry and dead connection; what failed, in the end, is
    # cxgraph's own `error:` line (GraphUnavailable), so its chatter waits for -v
    logging.getLogger("neo4j").setLevel(logging.DEBUG if verbose >= 2 else
                                        logging.WARNING if verbose else logging.CRITICAL)


@app.callback()
def _root(verbose: int = typer.Option(
        0, "--verbose", "-v", count=True,
        help="-v: log what each step does; -vv: debug detail, other libraries' too.")) -> None:
    setup_logging(verbose)


def main() -> None:
    """Entry point: cxgraph errors print as one clear line and exit 1, not a traceback."""
    try:
        app(prog_name="cxgraph")
    except CxgraphError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None
    except OSError as e:  # the file system said no (disk full, read-only, permissions)
        where = f" {e.filename}" if e.filename else ""
        typer.secho(f"error:{where}: {e.strerror or e}; fix it and run the same command "
                    "again (finished work is kept)", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None
