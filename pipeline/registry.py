"""The stage graph: every registered stage, in pipeline order, and what runs when.

Each layer's package registers its stages when imported
(``register(Stage(...))``); ``STAGE_PACKAGES`` is the one list of packages to
import. Adding a stage = one new folder (or module) with its ``Stage`` and a
``register`` call, plus its package here if it is a new one. Order comes from
the declared inputs and outputs (a stage runs after every stage that writes
what it reads), ties broken by registration order.

``run_pipeline(ws, sources, start=, until=, region=)`` runs the stages in order;
each is a no-op when its run identity is unchanged and its outputs are its own,
so running everything again costs only the identity checks. With a region, each
stage re-runs the blocks meeting the region or (through their read context)
what changed upstream — unless its outputs come from a whole-volume run with the
same identity, in which case the region would come out the same and it is left.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

from cxgraph.config import register_section
from cxgraph.errors import ConfigError
from cxgraph.provenance import ProvenanceStore
from cxgraph.workspace import Workspace
from pipeline.engine.blocks import Roi
from pipeline.engine.run import StageResult, bbox, run_stage, workspace_lock
from pipeline.engine.stage import Artifact, Stage

log = logging.getLogger(__name__)

STAGE_PACKAGES = (
    "pipeline.phantom",  # not a stage: registers the [phantom] section
    "pipeline.ingest",  # L1
    "pipeline.align",  # L2: stitch, align
    "pipeline.segment",  # L3
    "pipeline.synapses",  # L4
    "pipeline.serve",  # L5: the graph load
    "pipeline.pyramid",  # viewer pyramids of the volumes above: keep last
)

_STAGES: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add ``stage`` to the graph and its params class as section ``[stage.name]``."""
    known = _STAGES.get(stage.name)
    if known is not None and known is not stage and known.params is not stage.params:
        raise ConfigError(f"two stages named {stage.name!r}")
    register_section(stage.section, stage.params)
    _STAGES[stage.name] = stage
    return stage


def load() -> None:
    """Import every stage package (each registers its stages and params sections)."""
    for name in STAGE_PACKAGES:
        importlib.import_module(name)


def stages(include_optional: bool = True) -> list[Stage]:
    """Registered stages in pipeline order (``include_optional``: also non-default ones)."""
    load()
    order: list[Stage] = []
    placed: set[str] = set()
    pending = list(_STAGES.values())
    writer = producers()
    while pending:
        for s in pending:
            needs = {writer[a] for a in s.inputs if a in writer} - {s.name}
            if needs <= placed:
                order.append(s)
                placed.add(s.name)
                pending.remove(s)
                break
        else:
            raise ConfigError(f"stages {[s.name for s in pending]} depend on each other")
    return [s for s in order if include_optional or s.default]


def get(name: str) -> Stage:
    load()
    if name not in _STAGES:
        raise ConfigError(f"no stage {name!r}; registered: {[s.name for s in stages()]}")
    return _STAGES[name]


def check_regional(config) -> None:
    """Refuse a ``[[regional]]`` parameter the blocks would not run with: one that is not
    in its stage's ``regional_params`` (it shapes a whole-volume step: the registration,
    the grid, a finalize) or not a stage's at all."""
    load()
    for entry in config.regional:
        for key in entry.keys():
            section, _, name = key.partition(".")
            stage = _STAGES.get(section.strip())
            if stage is None or name.strip() not in stage.regional_params:
                allowed = sorted(f"{s.name}.{n}" for s in _STAGES.values()
                                 for n in s.regional_params)
                raise ConfigError(
                    f"{key}: cannot be set for a region {list(entry.region)} (it applies to "
                    f"the whole volume at once); set it without --region, or one of "
                    f"{allowed}")


def producers() -> dict[Artifact, str]:
    """{artifact: the stage that writes it}."""
    return {a: s.name for s in _STAGES.values() for a in s.outputs}


def downstream(name: str) -> list[str]:
    """``name`` and every stage that (transitively) reads what it writes, in order."""
    out = {get(name).name}
    for s in stages():
        writer = producers()
        if any(writer.get(a) in out for a in s.inputs):
            out.add(s.name)
    return [s.name for s in stages() if s.name in out]


def recorded_sources(ws: Workspace) -> dict[str, Path]:
    """The external sources (e.g. the tile directory) the workspace's last runs read."""
    out: dict[str, Path] = {}
    store = ProvenanceStore(ws.provenance_path)
    for s in stages():
        names = {a.key for a in s.inputs if a.kind == "source"}
        if not names:
            continue
        rows = store.execute("SELECT inputs_json FROM stage_runs WHERE stage = ? "
                             "ORDER BY started_at DESC LIMIT 1", [s.name])
        for name, d in json.loads(rows[0][0] if rows else "{}").items():
            if name in names:
                out[name.partition(":")[2]] = Path(d["path"])
    return out


def run_pipeline(
    ws: Workspace,
    sources: dict[str, Path] | None = None,
    start: str | None = None,
    until: str | None = None,
    region: Roi | None = None,
    only: list[str] | None = None,
) -> list[StageResult]:
    """Run the default stages from ``start`` through ``until`` (or exactly ``only``)."""
    chain = stages(include_optional=bool(only))
    check_regional(ws.config)
    names = [s.name for s in chain]
    for label, value in (("--until", until), ("--from", start)):
        if value is not None and value not in names:
            raise ConfigError(f"{label} {value!r}: expected one of {names}")
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"unknown stage(s) {unknown}; expected some of {names}")
        chain = [s for s in chain if s.name in only]
    else:
        first = names.index(start) if start else 0
        last = names.index(until) if until else len(names) - 1
        chain = chain[first: last + 1]
    sources = {**recorded_sources(ws), **(sources or {})}
    results = []
    # A regional run: each stage re-runs the blocks meeting the region grown by its own
    # context, and every block an upstream stage rewrote. Growth is around the region,
    # not around what upstream rewrote, so it stays within one context of the region
    # instead of spreading a context further at every stage.
    changed = region
    with workspace_lock(ws):
        for stage in chain:
            stage_region = None
            if region is not None and stage.grid is not None:
                margin = stage.context(ws.config[stage.section]) if stage.context else (0, 0, 0)
                stage_region = region if stage is chain[0] else bbox(
                    [region.grow(margin), changed])
            log.info("stage %s%s", stage.name, f" in {stage_region}" if stage_region else "")
            res = run_stage(ws, stage, region=stage_region, sources=sources,
                            producers=producers())
            results.append(res)
            changed = bbox([changed, res.changed])
    return results
