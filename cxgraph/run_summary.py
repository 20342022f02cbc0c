"""What a pipeline run did, from the provenance store: the table ``cxgraph run`` ends with.

Per stage: what happened (ran / resumed / reused), blocks, wall time, the share of block
time spent in zarr I/O against compute (``block_runs``), a few key quality figures, and
the flags raised (missing or failed sections, bad tiles, faults) with where to look next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from cxgraph.provenance import ProvenanceStore
from cxgraph.workspace import Workspace

# stage -> [(metric, aggregate, label)]: the figures an operator looks at first
KEY_FIGURES: dict[str, list[tuple[str, str, str]]] = {
    "ingest": [("membrane_contrast", "avg", "contrast"), ("snr", "avg", "SNR")],
    "stitch": [("stitch_residual_max_px", "max", "residual max px")],
    "align": [("residual_mean_px", "avg", "residual mean px"),
              ("residual_max_px", "max", "residual max px"), ("drift_px", "max", "drift max px")],
    "affinities": [("affinity_confidence", "avg", "confidence")],
    "supervoxels": [("fragments", "sum", "supervoxels")],
    "agglomerate": [("merges", "sum", "merges"),
                    ("supervoxels_per_body", "avg", "supervoxels/body")],
    "graph": [("consistency_violations", "sum", "consistency violations")],
}
DEFAULT_FIGURES = [("no_data_fraction", "avg", "no data")]

# flag metric (value 1 = raised) -> (what it means, where to look)
FLAGS: dict[str, tuple[str, str]] = {
    "section_missing": ("missing section", "tables/tiles.parquet (status); the viewer's "
                        "'flags' layer"),
    "tile_bad": ("bad tile", "tables/tiles.parquet (status, file)"),
    "alignment_failed": ("section not matched to any earlier one",
                         "tables/align_pairs.parquet (z, accepted, kept)"),
    "alignment_fault": ("alignment jump (fault band)",
                        "tables/section_transforms.parquet (dy, dx); the viewer's 'flags' layer"),
}


@dataclasses.dataclass(frozen=True)
class StageSummary:
    stage: str
    action: str
    stage_run_id: str
    blocks: int
    seconds: float
    io_share: float | None  # fraction of block time in zarr I/O
    figures: list[tuple[str, float]]
    flags: list[tuple[str, str, str]]  # (what, where: sections/blocks/tiles, look at)


def summarise(ws: Workspace, results: Iterable[Any]) -> list[StageSummary]:
    """One ``StageSummary`` per ``StageResult`` (stage, stage_run_id, action, seconds)."""
    store = ProvenanceStore(ws.provenance_path)
    out = []
    for r in results:
        blocks, io_s, compute_s = store.execute(
            "SELECT count(*), sum(io_s), sum(compute_s) FROM block_runs "
            "WHERE stage_run_id = ? AND status = 'done'", [r.stage_run_id])[0]
        total = (io_s or 0.0) + (compute_s or 0.0)
        seconds = r.seconds
        if r.action == "reused":  # the time the run that made the outputs took
            (wall,) = store.execute("SELECT wall_s FROM stage_runs WHERE stage_run_id = ?",
                                    [r.stage_run_id])[0] or (None,)
            seconds = wall or 0.0
        out.append(StageSummary(r.stage, r.action, r.stage_run_id, blocks, seconds,
                                (io_s or 0.0) / total if total > 0 else None,
                                _figures(store, r.stage, r.stage_run_id),
                                _flags(store, r.stage_run_id)))
    return out


def _figures(store: ProvenanceStore, stage: str, run_id: str) -> list[tuple[str, float]]:
    out = []
    for metric, agg, label in KEY_FIGURES.get(stage, DEFAULT_FIGURES):
        (value,) = store.execute(f"SELECT {agg}(value) FROM quality WHERE stage_run_id = ? "
                                 "AND metric = ? AND isfinite(value)", [run_id, metric])[0]
        if value is not None:
            out.append((label, float(value)))
    return out


def _flags(store: ProvenanceStore, run_id: str) -> list[tuple[str, str, str]]:
    out = []
    for metric, (what, look) in FLAGS.items():
        rows = store.execute("SELECT section, block, tile FROM quality WHERE stage_run_id = ? "
                             "AND metric = ? AND value >= 1 ORDER BY ALL", [run_id, metric])
        if not rows:
            continue
        sections = sorted({s for s, _, _ in rows if s is not None})
        blocks = sorted({b for _, b, _ in rows if b is not None})
        tiles = sorted({t for _, _, t in rows if t is not None})
        where = "; ".join(p for p in (
            f"sections {ranges(sections)}" if sections else "",
            f"tiles {', '.join(tiles[:5])}{' ...' if len(tiles) > 5 else ''}" if tiles else "",
            f"blocks {', '.join(map(str, blocks[:5]))}" if blocks and not sections else "",
        ) if p)
        out.append((what, where, look))
    return out


def ranges(values: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    parts: list[str] = []
    for v in sorted(values):
        if parts and parts[-1][1] == v - 1:
            parts[-1] = (parts[-1][0], v)
        else:
            parts.append((v, v))  # type: ignore[arg-type]
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)  # type: ignore[misc]


def render(console: Any, summaries: list[StageSummary], ws: Workspace) -> None:
    """The run's table and its flags on a ``rich`` console."""
    from rich.table import Table

    t = Table(title="pipeline run", title_justify="left")
    for col, just in (("stage", "left"), ("did", "left"), ("blocks", "right"),
                      ("time s", "right"), ("I/O", "right"), ("key figures", "left"),
                      ("flags", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for s in summaries:
        t.add_row(s.stage, s.action, str(s.blocks), f"{s.seconds:.1f}",
                  "-" if s.io_share is None else f"{100 * s.io_share:.0f}%",
                  ", ".join(f"{k} {v:.3g}" for k, v in s.figures) or "-",
                  str(len(s.flags)) if s.flags else "-")
    console.print(t)
    flagged = [(s.stage, f) for s in summaries for f in s.flags]
    if flagged:
        console.print("[bold]flags raised[/bold]")
        for stage, (what, where, look) in flagged:
            console.print(f"  {stage}: {what}: {where}\n      look at {look}", markup=False,
                          highlight=False)
        console.print(f"  all quality rows: tables/quality.parquet; see them in place: "
                      f"cxgraph view -w {ws.root}", markup=False, highlight=False)
