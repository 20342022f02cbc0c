"""The neuroglancer view of a workspace: which layers, from which data, in one coordinate space.

Volumes are read by neuroglancer itself, as OME-Zarr over HTTP (``zarr3://``), so
their voxel sizes come from the files' own metadata. Tables become local
annotation layers (synapses as pre -> post lines, flagged sections and blocks as
boxes) and per-block / per-section quality becomes small heat-map volumes.
Annotation positions are voxels (z, y, x) + 0.5: neuroglancer puts voxel i's
centre at i + 0.5.

``layers(ws, ...)`` only decides and reads; ``cxgraph.commands.view`` serves the
files and runs the viewer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cxgraph.provenance import ProvenanceStore
from cxgraph.run_summary import FLAGS
from cxgraph.workspace import Workspace

log = logging.getLogger(__name__)

MAX_SYNAPSES = 5000  # local annotations travel in the viewer state: keep it small
IMAGES = ("aligned", "raw", "smoothed")
LABELS = ("segmentation", "supervoxels")
SECTION_HEAT = {("ingest", "membrane_contrast"), ("ingest", "snr"),
                ("align", "residual_mean_px"), ("align", "drift_px")}
HEAT_SHADER = """#uicontrol invlerp normalized(range=[%g, %g])
void main() { emitRGBA(vec4(colormapJet(normalized()), 0.5)); }"""


@dataclasses.dataclass
class Layer:
    """One layer: ``kind`` image | segmentation | annotation | heat; ``spec`` its fields."""

    name: str
    kind: str
    spec: dict[str, Any]
    visible: bool = True


def voxel_size(ws: Workspace) -> tuple[float, float, float]:
    for name in (*IMAGES, *LABELS):
        if ws.has_array(name):
            return tuple(float(v) for v in ws.array(name).attrs["voxel_size"])  # type: ignore[return-value]
    return (1.0, 1.0, 1.0)


def volume_layers(ws: Workspace, data_url: str, input_url: str | None,
                  input_dir: Path | None, bodies: list[int]) -> list[Layer]:
    """EM images, then labels: the workspace's segmentation / supervoxels, and the phantom's
    ground truth when there is one (shown only when the pipeline has no labels yet)."""
    out = [Layer(n, "image", {"source": f"zarr3://{data_url}/volumes.zarr/{n}/"}, n == "aligned")
           for n in IMAGES if ws.has_array(n)]
    labels = [n for n in LABELS if ws.has_array(n)]
    for i, n in enumerate(labels):
        out.append(Layer(n, "segmentation", {"source": f"zarr3://{data_url}/volumes.zarr/{n}/",
                                             "segments": bodies}, i == 0))
    gt = input_dir / "gt" / "labels.zarr" if input_dir else None
    if gt is not None and (gt / "zarr.json").exists() and input_url:
        vs = json.loads((gt / "zarr.json").read_text())["attributes"].get("voxel_size",
                                                                         voxel_size(ws))
        # a plain zarr array (neuroglancer calls its axes dim_0..2, unitless): map them to
        # z, y, x and give their sizes in the source transform
        attrs = json.loads((gt / "zarr.json").read_text())
        names = attrs.get("dimension_names") or [f"dim_{i}" for i in range(3)]
        units = attrs.get("attributes", {}).get("dimension_units")
        source: dict[str, Any] = {"url": f"zarr3://{input_url}/gt/labels.zarr/"}
        if not units:  # same sizes in and out: the matrix only renames the axes
            sizes = [[float(v) * 1e-9, "m"] for v in vs]
            source["transform"] = {
                "inputDimensions": dict(zip(names, sizes, strict=True)),
                "outputDimensions": dict(zip("zyx", sizes, strict=True)),
                "matrix": [[float(i == j) for j in range(4)] for i in range(3)]}
        out.append(Layer("ground truth", "segmentation", {"source": source,
                                                          "segments": bodies}, not labels))
    return out


def synapse_layer(ws: Workspace, input_dir: Path | None, bodies: list[int],
                  label_layer: str | None) -> Layer | None:
    """Synapses as lines pre -> post (endpoints at the two sites), linked to the label layer
    so selecting bodies filters them; the workspace's table, else the phantom's truth."""
    path = ws.table_path("synapses")
    if not path.exists() and input_dir is not None:
        path = input_dir / "gt" / "synapses.parquet"
    if not path.exists():
        return None
    t = pq.read_table(path)
    cols = set(t.column_names)
    need = {f"{s}_{a}" for s in ("pre", "post") for a in "zyx"}
    if not need <= cols:
        log.warning("%s lacks %s; no synapse layer", path, sorted(need - cols))
        return None
    pre_b = next((c for c in ("pre_body", "pre_id") if c in cols), None)
    post_b = next((c for c in ("post_body", "post_id") if c in cols), None)
    d = t.to_pydict()
    n = t.num_rows
    keep = list(range(n))
    if bodies and pre_b and post_b:
        want = set(bodies)
        keep = [i for i in keep if d[pre_b][i] in want or d[post_b][i] in want]
    if len(keep) > MAX_SYNAPSES:
        log.warning("showing %d of %d synapses (select --bodies to see theirs)",
                    MAX_SYNAPSES, len(keep))
        keep = keep[:MAX_SYNAPSES]
    ann = []
    for i in keep:
        a = {"type": "line", "id": str(d.get("synapse_id", range(n))[i]),
             "pointA": [d[f"pre_{c}"][i] + 0.5 for c in "zyx"],
             "pointB": [d[f"post_{c}"][i] + 0.5 for c in "zyx"]}
        if pre_b and post_b:
            a["segments"] = [[str(d[pre_b][i])], [str(d[post_b][i])]]
        ann.append(a)
    spec: dict[str, Any] = {"annotations": ann, "source_table": str(path)}
    if pre_b and post_b and label_layer:
        spec |= {"annotationRelationships": ["pre", "post"],
                 "linkedSegmentationLayer": {"pre": label_layer, "post": label_layer},
                 "filterBySegmentation": ["pre", "post"] if bodies else []}
    return Layer(f"synapses ({len(keep)})", "annotation", spec)


def _latest_runs(store: ProvenanceStore) -> dict[str, str]:
    rows = store.execute("SELECT stage, arg_max(stage_run_id, finished_at) FROM stage_runs "
                         "WHERE status = 'done' GROUP BY stage")
    return dict(rows)


def flag_layer(ws: Workspace) -> Layer | None:
    """Boxes around flagged sections (whole section) and blocks (their write region)."""
    if not ws.provenance_path.exists():
        return None
    store = ProvenanceStore(ws.provenance_path)
    runs = _latest_runs(store)
    shape = _volume_shape(ws)
    ann = []
    for stage, run in runs.items():
        rows = store.execute(
            "SELECT q.metric, q.section, q.block, q.tile, b.write_roi FROM quality q "
            "LEFT JOIN block_runs b ON b.stage_run_id = q.stage_run_id AND b.block_id = q.block "
            "WHERE q.stage_run_id = ? AND q.metric IN (SELECT unnest(?)) AND q.value >= 1 "
            "ORDER BY ALL", [run, list(FLAGS)])
        seen = set()
        for metric, section, block, tile, roi in rows:
            what = FLAGS[metric][0]
            if section is not None and shape:
                key = (metric, section)
                a, b = [section, 0, 0], [section + 1, shape[1], shape[2]]
                text = f"{stage}: {what}, z={section}" + (f" ({tile})" if tile else "")
            elif roi is not None:
                key = (metric, block)
                a, b = list(roi[:3]), list(roi[3:])
                text = f"{stage}: {what}, block {block}"
            else:
                continue
            if key not in seen:
                seen.add(key)
                ann.append({"type": "axis_aligned_bounding_box", "id": f"{stage}-{len(ann)}",
                            "pointA": a, "pointB": b, "description": text})
    return Layer(f"flags ({len(ann)})", "annotation", {"annotations": ann}) if ann else None


def volume_extent_nm(ws: Workspace) -> list[float] | None:
    """The volume's size in nm (z, y, x)."""
    shape = _volume_shape(ws)
    return None if shape is None else [n * v for n, v in zip(shape, voxel_size(ws), strict=True)]


def _volume_shape(ws: Workspace) -> tuple[int, ...] | None:
    for name in (*IMAGES, *LABELS):
        if ws.has_array(name):
            return tuple(ws.array(name).shape)
    return None


def heat_layers(ws: Workspace) -> list[Layer]:
    """Per-block quality (every metric with block rows) and chosen per-section metrics, as
    volumes of one voxel per block / section; hidden until chosen (they tint the EM)."""
    if not ws.provenance_path.exists() or _volume_shape(ws) is None:
        return []
    store = ProvenanceStore(ws.provenance_path)
    shape = _volume_shape(ws)
    vs = np.asarray(voxel_size(ws))
    out = []
    for stage, run in _latest_runs(store).items():
        rows = store.execute(
            "SELECT q.metric, b.write_roi, avg(q.value) FROM quality q JOIN block_runs b ON "
            "b.stage_run_id = q.stage_run_id AND b.block_id = q.block WHERE q.stage_run_id = ? "
            "AND q.section IS NULL AND q.tile IS NULL GROUP BY ALL", [run])
        by_metric: dict[str, list[tuple[list[int], float]]] = {}
        for metric, roi, value in rows:
            by_metric.setdefault(metric, []).append((roi, value))
        for metric, items in sorted(by_metric.items()):
            if len(items) > 1:
                out.append(_block_heat(f"{stage} {metric}", items, vs))
        for metric in sorted(m for s, m in SECTION_HEAT if s == stage):
            sec = store.execute("SELECT section, avg(value) FROM quality WHERE stage_run_id = ? "
                                "AND metric = ? AND tile IS NULL AND section IS NOT NULL "
                                "AND isfinite(value) GROUP BY section", [run, metric])
            if sec:
                data = np.full((shape[0], 1, 1), np.nan, np.float32)  # type: ignore[index]
                for z, v in sec:
                    data[z] = v
                scales = vs * [1, shape[1], shape[2]]  # type: ignore[index]
                out.append(_heat(f"{stage} {metric} (sections)", data, scales))
    for layer in out:
        layer.visible = False
    return out


def _block_heat(name: str, items: list[tuple[list[int], float]], vs: np.ndarray) -> Layer:
    shapes = [tuple(np.subtract(r[3:], r[:3])) for r, _ in items]
    block = np.asarray(max(set(shapes), key=shapes.count))
    idx = [tuple(np.asarray(r[:3]) // block) for r, _ in items]
    data = np.full(tuple(np.max(idx, axis=0) + 1), np.nan, np.float32)
    for i, (_, v) in zip(idx, items, strict=True):
        data[i] = v
    return _heat(name, data, vs * block)


def _heat(name: str, data: np.ndarray, scales: np.ndarray) -> Layer:
    finite = data[np.isfinite(data)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return Layer(f"quality: {name}", "heat", {
        "data": np.nan_to_num(data, nan=lo), "scales": [float(s) for s in scales],
        "shader": HEAT_SHADER % (lo, hi if hi > lo else lo + 1)})
