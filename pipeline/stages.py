"""The pipeline's stages in order: what ``cxgraph run`` executes.

``STAGES`` is the one registry: an ordered list of (name, function). A stage
function takes the workspace and the input directory and returns its stage run
id; it wraps itself in ``cxgraph.provenance.stage_run``. Later layers append
their stages here (segment, synapses, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from cxgraph.errors import ConfigError
from cxgraph.workspace import Workspace

log = logging.getLogger(__name__)

StageFn = Callable[[Workspace, Path], str]


def _ingest(ws: Workspace, input_dir: Path) -> str:
    from pipeline.ingest import run_ingest

    return run_ingest(ws, input_dir)


def _stitch(ws: Workspace, input_dir: Path) -> str:
    from pipeline.align.stage import run_stitch

    return run_stitch(ws, input_dir)


def _align(ws: Workspace, input_dir: Path) -> str:
    from pipeline.align.stage import run_align

    return run_align(ws, input_dir)


STAGES: list[tuple[str, StageFn]] = [
    ("ingest", _ingest),  # L1: tiles -> volumes.zarr/tiles + tables/tiles
    ("stitch", _stitch),  # L2: tiles -> volumes.zarr/raw (mosaics) + tables/tile_positions
    ("align", _align),  # L2: raw -> volumes.zarr/aligned (nominal frame)
]


def stage_names() -> list[str]:
    return [name for name, _ in STAGES]


def run_stages(
    ws: Workspace, input_dir: Path | str, until: str | None = None, start: str | None = None
) -> dict[str, str]:
    """Run the stages from ``start`` (default: the first) through ``until`` (default: all).

    Returns {stage name: stage run id}.
    """
    names = stage_names()
    for label, value in (("--until", until), ("--from", start)):
        if value is not None and value not in names:
            raise ConfigError(f"{label} {value!r}: expected one of {names}")
    first = names.index(start) if start else 0
    last = names.index(until) if until else len(names) - 1
    out = {}
    for name, fn in STAGES[first : last + 1]:
        log.info("stage %s", name)
        out[name] = fn(ws, Path(input_dir))
    return out
