"""Score an alignment against the synthetic microscope's ground truth (DIR/gt/).

What is compared (all px, y/x combined as a Euclidean norm):

- **tile placement**: solved tile positions vs the true ones (gt/tile_offsets
  y, x), within each section, after removing the section's mean (the stitching
  gauge leaves one translation per section free).
- **registration**: where each tile's pixel [0, 0] lands in the nominal frame,
  estimated ``T - D - u`` vs true ``y_em, x_em`` (= T - d), averaged per section,
  after removing ONE constant for the whole volume (the median over sections:
  the global solve fixes only the mean displacement, see stage.py). This is
  the end-to-end error of the aligned volume, stitching included.
- **naive chaining**: the same error when each section is registered only to
  the previous usable one and the translations are summed (what accumulates).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cxgraph.provenance import ProvenanceStore
from cxgraph.workspace import Workspace
from pipeline.align.params import AlignParams
from pipeline.align.register import match_pair, matching_image
from pipeline.align.warp import Field


def _fault_sections(gt: Path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    path = gt / "faults.json"
    for f in json.loads(path.read_text()) if path.exists() else []:
        z = f["region"].get("z")
        if z:
            out.setdefault(f["kind"], set()).update(range(z[0], z[1]))
    return out


def evaluate(ws: Workspace, input_dir: Path | str, naive: bool = True) -> dict[str, Any]:
    """Scores of the workspace's alignment against ``input_dir/gt`` (see module docstring)."""
    gt = Path(input_dir) / "gt"
    true = pq.read_table(gt / "tile_offsets.parquet").to_pydict()
    grid_cols = ws.array("tiles").attrs["grid"][1]
    pos = ws.read_table("tile_positions").to_pydict()
    est = {(z, i): (y, x) for z, i, y, x, u in zip(pos["z"], pos["tile_index"], pos["y"],
                                                  pos["x"], pos["used"], strict=True) if u}
    st = ws.read_table("section_transforms").to_pydict()
    d = {z: np.array([dy, dx]) for z, dy, dx, ok in zip(st["z"], st["dy"], st["dx"], st["usable"],
                                                        strict=True) if ok}
    fields = _fields(ws)
    faults = _fault_sections(gt)
    th, tw = ws.array("tiles").attrs["tile_shape"]

    place_err: list[float] = []
    by_z: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for z, r, c, y, x, ye, xe in zip(true["z"], true["row"], true["col"], true["y"], true["x"],
                                     true["y_em"], true["x_em"], strict=True):
        key = (z, r * grid_cols + c)
        if key not in est or z not in d:
            continue
        t_hat = np.array(est[key])
        centre = t_hat + (th / 2, tw / 2) - d[z]
        u = fields[z].at(np.array([centre[0]]), np.array([centre[1]]))[:, 0] if z in fields \
            else np.zeros(2)
        by_z.setdefault(z, []).append((t_hat, np.array([y, x], float),
                                       t_hat - d[z] - u - np.array([ye, xe])))
    for rows in by_z.values():
        diff = np.array([a - b for a, b, _ in rows])
        diff -= diff.mean(axis=0)
        place_err += list(np.hypot(diff[:, 0], diff[:, 1]))
    zs = sorted(by_z)
    sec = np.array([np.mean([e for _, _, e in by_z[z]], axis=0) for z in zs])
    sec -= np.median(sec, axis=0)
    reg_err = np.hypot(sec[:, 0], sec[:, 1])
    bad = faults.get("damaged-section", set())
    clean = np.array([z not in bad for z in zs])
    out: dict[str, Any] = {
        "sections": len(zs),
        "tile_error_mean_px": float(np.mean(place_err)),
        "tile_error_max_px": float(np.max(place_err)),
        "registration_error_mean_px": float(reg_err[clean].mean()),
        "registration_error_max_px": float(reg_err[clean].max()),
        "registration_error_max_all_px": float(reg_err.max()),
        "per_section_error_px": dict(zip(zs, map(float, reg_err), strict=True)),
        "fault_sections": {k: sorted(v) for k, v in faults.items()},
    }
    out |= _flag_check(ws, faults)
    if naive:
        out |= _naive(ws, zs, by_z, d, bad)
    return out


def _fields(ws: Workspace) -> dict[int, Field]:
    if not ws.table_path("align_field").exists():
        return {}
    t = ws.read_table("align_field").to_pydict()
    zs = sorted(set(t["z"]))
    ny, nx = max(t["iy"]) + 1, max(t["ix"]) + 1
    u = {z: np.zeros((ny, nx, 2)) for z in zs}
    for z, iy, ix, uy, ux in zip(t["z"], t["iy"], t["ix"], t["uy"], t["ux"], strict=True):
        u[z][iy, ix] = (uy, ux)
    y0, x0 = min(t["node_y"]), min(t["node_x"])
    stride = (max(t["node_x"]) - x0) / (nx - 1) if nx > 1 else 1.0
    if ws.config["align"].local_fields is False:
        return {}
    return {z: Field(u[z], (y0, x0), stride) for z in zs}


def _flag_check(ws: Workspace, faults: dict[str, set[int]]) -> dict[str, Any]:
    # the quality table keeps every run's rows: read the latest finished align run's
    rows = ProvenanceStore(ws.provenance_path).query(
        "SELECT q.metric, q.section FROM quality q WHERE q.value != 0 AND q.stage_run_id = "
        "(SELECT stage_run_id FROM stage_runs WHERE stage = 'align' AND status = 'done' "
        " ORDER BY finished_at DESC LIMIT 1) AND q.metric IN "
        "('alignment_fault', 'alignment_failed', 'section_missing')").to_pydict()
    flagged: dict[str, set[int]] = {}
    for metric, section in zip(rows["metric"], rows["section"], strict=True):
        flagged.setdefault(metric, set()).add(section)
    band = faults.get("alignment-fault", set())
    missing = faults.get("missing-section", set())
    return {
        "flagged": {k: sorted(v) for k, v in flagged.items()},
        "fault_band_detected": bool(band) and band <= flagged.get("alignment_fault", set()),
        "missing_detected": bool(missing) and missing <= flagged.get("section_missing", set()),
        # a damaged section flagged as a fault is right (its content is folded or torn)
        "false_fault_flags": sorted(flagged.get("alignment_fault", set()) - band
                                    - faults.get("damaged-section", set())),
    }


def _naive(ws: Workspace, zs: list[int], by_z, d: dict[int, np.ndarray],
           bad: set[int]) -> dict[str, Any]:
    """Chain each section to the previous usable one only, with the same matcher."""
    params: AlignParams = ws.config["align"]
    raw = ws.array("raw")

    def load(z):
        img = np.asarray(raw[z]).astype(np.float32)
        mosaic = (img, img > 0)
        return mosaic, matching_image(mosaic, params)

    chain = {zs[0]: np.zeros(2)}
    prev = load(zs[0])
    for a, b in zip(zs[:-1], zs[1:], strict=True):
        cur = load(b)
        m = match_pair(prev[0], cur[0], params, (prev[1], cur[1]))
        chain[b] = chain[a] - m.shift
        prev = cur
    # the per-tile error e was computed with D; chaining replaces D by the chain sum
    sec = np.array([np.mean([e + d[z] - chain[z] for _, _, e in by_z[z]], axis=0) for z in zs])
    sec -= np.median(sec, axis=0)
    err = np.hypot(sec[:, 0], sec[:, 1])
    return {"naive_error_mean_px": float(err.mean()), "naive_error_max_px": float(err.max()),
            "naive_per_section_error_px": dict(zip(zs, map(float, err), strict=True))}
