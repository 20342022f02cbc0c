"""The synthetic microscope ("phantom"): EM-like tiles with ground truth for every layer.

``render_phantom(out_dir, params, labels=None)`` writes::

    DIR/manifest.json        format cxgraph-tiles/1: shape, voxel_size (nm, z, y, x), dtype,
                             tile_shape, sections [{z, status, tiles [{file, row, col, y, x}]}]
                             with NOMINAL tile top-left positions (px, nominal frame)
    DIR/tiles/zZZZZ_rRR_cCC.tif   uint8 tiles (missing sections have none)
    DIR/gt/labels.zarr       uint64 body id per voxel (z, y, x), nominal frame, 0 = ECS
    DIR/gt/em.zarr           uint8 clean specimen (blur + specimen faults, no noise/tiling)
    DIR/gt/clefts.zarr       uint32 synapse_id per voxel of its rendered cleft/PSD zone, 0 elsewhere
    DIR/gt/synapses.parquet  synapse_id, site_id, pre_id, post_id, pre_z/y/x, post_z/y/x (voxels),
                             contact_vx, area_z/y/x_nm2 (cleft face area per axis)
    DIR/gt/mito.zarr         uint8 1 = mitochondrion (inside its body's label)
    DIR/gt/vesicles.parquet  z, y, x (voxels, float, nominal frame), diameter_nm
    DIR/gt/bodies.parquet    body_id, kind (soma/dendrite/axon/glia/neurite), voxels
    DIR/gt/tile_offsets.parquet    z, row, col, y, x (true top-left px in the section
                             image), y_nominal, x_nominal, y_em, x_em (= y - dy, x - dx:
                             where the tile's pixel [0, 0] lies in the nominal frame),
                             gain, offset, vignetting
    DIR/gt/section_offsets.parquet z, dy, dx (px, float; section image = em shifted by
                             (dy, dx)), drift_dy/dx (accumulated random walk), jitter_dy/dx,
                             fault_dy/dx (alignment-fault jumps)
    DIR/gt/faults.json       [{kind, spec, strength, region}] (see faults.py)
    DIR/phantom.json         the full parameters and seed
    DIR/preview/*.png        with preview=True

The frames are defined in ``microscope.py``. Synapse density, object diameters and
membrane fraction are checked against published figures in tests/test_phantom_stats.py.
Deterministic for a seed: each part draws from its own child of SeedSequence(seed).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np

from cxgraph.errors import ConfigError
from pipeline.ingest.manifest import write_manifest, write_tile
from pipeline.phantom import faults as faults_mod
from pipeline.phantom import io, membranes, microscope, morphology, render, synapses
from pipeline.phantom import ultrastructure as us
from pipeline.phantom.params import PhantomParams
from pipeline.phantom.particles import Shells

log = logging.getLogger(__name__)

__all__ = ["PhantomParams", "PhantomResult", "render_phantom"]


@dataclasses.dataclass(frozen=True)
class PhantomResult:
    """What was written and a few counts."""

    out_dir: Path
    shape: tuple[int, int, int]
    n_bodies: int
    n_synapses: int
    n_tiles: int
    faults: list[dict]
    timings_s: dict[str, float]


def render_phantom(out_dir: str | Path, params: PhantomParams,
                   labels: np.ndarray | None = None, preview: bool = False) -> PhantomResult:
    """Render a phantom into ``out_dir`` (see the module docstring for the layout).

    ``labels`` (z, y, x) non-negative integers: render EM from this segmentation
    instead of generated morphology (its shape replaces ``params.shape``).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out_dir)
    if labels is not None:
        params = params.replace(shape=tuple(int(s) for s in labels.shape))
    Z, Y, X = params.shape
    r_morph, r_syn, r_render, r_scope, r_noise, r_fault = (
        np.random.default_rng(s) for s in np.random.SeedSequence(params.seed).spawn(6))

    grid = microscope.tile_grid((Y, X), params.tile_size, params.tile_overlap)
    if not 0.05 <= grid.overlap <= 0.15 and grid.rows * grid.cols > 1:
        raise ConfigError(
            f"phantom: tile size {grid.tile} px with overlap {params.tile_overlap} gives a "
            f"tile overlap of {grid.overlap:.3f}; choose values giving 5-15 %")
    fl = faults_mod.resolve(params.faults, (Z, Y, X), (grid.rows, grid.cols), r_fault)
    offs = microscope.section_offsets(Z, fl, params, r_scope)
    pos = microscope.tile_positions(Z, grid, fl, params, r_scope)
    nominal = np.stack(np.meshgrid(np.arange(grid.rows) * grid.step,
                                   np.arange(grid.cols) * grid.step, indexing="ij"), axis=-1)
    reach = max(float(np.max(np.abs(np.stack([offs["dy"], offs["dx"]])))),
                float(np.max(np.abs(pos - nominal[None]))),
                float(max(grid.extent[0] - Y, grid.extent[1] - X, 0)))
    m = int(math.ceil(reach)) + 8  # specimen margin around the nominal frame, px
    pshape = (Z, Y + 2 * m, X + 2 * m)
    log.info("phantom %s voxels, margin %d px, %d x %d tiles of %d px per section",
             params.shape, m, grid.rows, grid.cols, grid.tile)

    # --- tissue ---
    if labels is None:
        morph = morphology.generate(params, pshape, r_morph)
        lab, kind_of, mito = morph.labels, morph.kind_of, morph.mito
        sites, site_r, nuclei, pre_kinds = (morph.boutons_vx, morph.bouton_radius_nm,
                                            morph.nuclei, ("axon",))
        tubes = morph.tubes
    else:
        lab_u, inv = np.unique(labels, return_inverse=True)
        dense = inv.reshape(labels.shape).astype(np.uint32)
        if lab_u[0] != 0:
            dense += 1
            lab_u = np.concatenate([[0], lab_u])
        lab = np.pad(dense, ((0, 0), (m, m), (m, m)), mode="symmetric")
        kind_of = np.full(len(lab_u), morphology.KIND_CODES["neurite"], dtype=np.uint8)
        kind_of[0] = 0
        mito = np.zeros(lab.shape, dtype=bool)
        n_sites = int(round(params.synapse_density_per_um3 * params.volume_um3
                            * (pshape[1] * pshape[2]) / (Y * X)
                            / (1 + params.polyadic_fraction)))
        sites = synapses.sample_contact_sites(lab, params, r_morph, max(1, n_sites))
        site_r = np.full(len(sites), 300.0)
        nuclei, pre_kinds, tubes = [], ("neurite",), []
    timings["morphology"] = time.perf_counter() - t0

    sites, site_r = _fewer_synapses(sites, site_r, fl, m, params.seed)
    t = time.perf_counter()
    syn = synapses.find_synapses(lab, kind_of, sites, site_r, params, r_syn, pre_kinds)
    timings["synapses"] = time.perf_counter() - t

    t = time.perf_counter()
    vs = np.asarray(params.voxel_size, dtype=float)
    r_ultra, r_tex = r_render.spawn(2)
    phi = membranes.boundary_distance(lab, params.voxel_size)
    if labels is None:
        bv = np.clip(np.round(sites).astype(int), 0, np.array(lab.shape) - 1)
        body = lab[tuple(bv.T)] if len(bv) else np.zeros(0, dtype=lab.dtype)
        clouds = [(c * vs, 0.9 * r, int(b)) for c, r, b in zip(sites, site_r, body, strict=True)
                  if b > 0 and kind_of[b] == morphology.KIND_CODES["axon"]]
    else:
        clouds = syn.clouds
    shells = Shells.concat([
        us.vesicles(lab, phi, mito, clouds, params, r_ultra),
        us.microtubules(lab, phi, tubes, params, r_ultra),
        us.endoplasmic_reticulum(lab, phi, tubes, params, r_ultra)])
    if mito.any():
        import cc3d

        comp = cc3d.connected_components(mito, connectivity=6, out_dtype=np.uint32)
        psi = membranes.signed_mask_distance(mito, params.voxel_size)
        axes = membranes.crista_axes(int(comp.max()), r_ultra, params.cristae_spacing_nm)
    else:
        comp, psi, axes = None, None, np.zeros((1, 8))
    geo = membranes.Geometry(lab, phi, syn.zone, psi, comp, axes, nuclei)
    em = render.render_specimen(geo, kind_of, shells, fl, (0, -m, -m), params, r_tex)
    del phi, psi, comp
    timings["render"] = time.perf_counter() - t

    # --- ground truth in the nominal frame ---
    t = time.perf_counter()
    crop = (slice(None), slice(m, m + Y), slice(m, m + X))
    gt_lab = lab[crop]
    if labels is not None:
        gt_ids = lab_u.astype(np.uint64)
        gt_lab_out = gt_ids[gt_lab]
    else:
        gt_ids = np.arange(len(kind_of), dtype=np.uint64)
        gt_lab_out = gt_lab.astype(np.uint64)
    gt = out / "gt"
    gt.mkdir(parents=True, exist_ok=True)
    io.write_zarr(gt / "labels.zarr", gt_lab_out, params.voxel_size)
    em_u8 = np.clip(np.round(em[crop]), 0, 255).astype(np.uint8)
    io.write_zarr(gt / "em.zarr", em_u8, params.voxel_size)
    counts = np.bincount(gt_lab.ravel(), minlength=len(kind_of))
    present = np.flatnonzero(counts[1:]) + 1
    codes = {v: k for k, v in morphology.KIND_CODES.items()}
    io.write_table(gt / "bodies.parquet", {
        "body_id": pa_u64(gt_ids[present]),
        "kind": [codes[int(k)] for k in kind_of[present]],
        "voxels": counts[present].astype(np.int64)})
    rows = []
    sid_of_row = np.zeros(len(syn.rows) + 1, dtype=np.uint32)
    for k, r in enumerate(syn.rows):
        pre = np.array(r["pre"]) - (0, m, m)
        post = np.array(r["post"]) - (0, m, m)
        if np.all((pre >= 0) & (pre < (Z, Y, X))) and np.all((post >= 0) & (post < (Z, Y, X))):
            rows.append((r, pre, post))
            sid_of_row[k + 1] = len(rows)
    io.write_zarr(gt / "clefts.zarr", sid_of_row[np.abs(syn.zone[crop])], params.voxel_size)
    io.write_zarr(gt / "mito.zarr", mito[crop].astype(np.uint8), params.voxel_size)
    ves = shells.kind == 1
    vc = shells.centre[ves] / vs - (0, m, m)
    inv = np.all((vc >= -0.5) & (vc < np.array([Z, Y, X]) - 0.5), axis=1)
    io.write_table(gt / "vesicles.parquet", {
        **{a: vc[inv, i].astype(np.float32) for i, a in enumerate("zyx")},
        "diameter_nm": (shells.r_out[ves][inv] + shells.r_in[ves][inv]).astype(np.float32)})
    io.write_table(gt / "synapses.parquet", {
        "synapse_id": np.arange(1, len(rows) + 1, dtype=np.uint64),
        "site_id": np.array([r["site_id"] for r, _, _ in rows], dtype=np.int64),
        "pre_id": pa_u64([gt_ids[r["pre_id"]] for r, _, _ in rows]),
        "post_id": pa_u64([gt_ids[r["post_id"]] for r, _, _ in rows]),
        **{f"pre_{a}": np.array([p[i] for _, p, _ in rows], dtype=np.int64)
           for i, a in enumerate("zyx")},
        **{f"post_{a}": np.array([q[i] for _, _, q in rows], dtype=np.int64)
           for i, a in enumerate("zyx")},
        "contact_vx": np.array([r["contact_vx"] for r, _, _ in rows], dtype=np.int64),
        **{f"area_{a}_nm2": np.array([r[f"area_{a}_nm2"] for r, _, _ in rows], dtype=np.float64)
           for a in "zyx"},
    })
    io.write_table(gt / "section_offsets.parquet", offs)
    io.write_json(gt / "faults.json", [f.to_dict() for f in fl])
    timings["ground_truth"] = time.perf_counter() - t

    # --- the microscope ---
    t = time.perf_counter()
    missing = {z for f in fl if f.kind == "missing-section" for z in range(*f.z_range())}
    damaged = {z: f for f in fl if f.kind == "damaged-section" for z in range(*f.z_range())}
    bursts = [f for f in fl if f.kind == "noise-burst"]
    sections, trows = [], []
    montage: list[tuple[int, int, np.ndarray]] = []
    mid = Z // 2 if Z // 2 not in missing else min(set(range(Z)) - missing)
    th = grid.tile
    for z in range(Z):
        dy, dx = float(offs["dy"][z]), float(offs["dx"][z])
        if z in missing:
            sections.append({"z": z, "status": "missing", "tiles": []})
            continue
        simg = microscope.shifted_section(em[z], dy, dx)
        if z in damaged:
            simg = microscope.damage(simg, damaged[z], (-m - dy, -m - dx), params)
        tiles = []
        for row in range(grid.rows):
            for col in range(grid.cols):
                ty, tx = (int(v) for v in pos[z, row, col])
                clean = simg[m + ty: m + ty + th, m + tx: m + tx + th]
                sd: np.ndarray | float = params.read_noise
                for f in bursts:
                    z0, z1 = f.z_range()
                    if z0 <= z < z1:
                        yy = np.arange(th)[:, None] + ty - dy
                        xx = np.arange(th)[None, :] + tx - dx
                        inb = ((yy >= f.region["y"][0]) & (yy < f.region["y"][1])
                               & (xx >= f.region["x"][0]) & (xx < f.region["x"][1]))
                        sd = sd + inb * (40.0 * f.strength)
                tile, meta = microscope.image_tile(clean, sd, params, r_noise)
                name = f"tiles/z{z:04d}_r{row:02d}_c{col:02d}.tif"
                write_tile(out / name, tile)
                ny, nx = grid.nominal(row, col)
                tiles.append({"file": name, "row": row, "col": col, "y": float(ny),
                              "x": float(nx)})
                trows.append({"z": z, "row": row, "col": col, "y": ty, "x": tx,
                              "y_nominal": ny, "x_nominal": nx, "y_em": ty - dy,
                              "x_em": tx - dx, **meta})
                if z == mid:
                    montage.append((row, col, tile))
        sections.append({"z": z, "status": "ok", "tiles": tiles})
    io.write_table(gt / "tile_offsets.parquet",
                   {k: [r[k] for r in trows] for k in (trows[0] if trows else {"z": 0})})
    write_manifest(out, (Z, Y, X), params.voxel_size, (th, th), sections)
    timings["microscope"] = time.perf_counter() - t
    if preview:
        io.write_previews(out, em_u8[mid], gt_lab[mid].astype(np.int64), montage, grid.rows,
                          grid.cols)
    timings["total"] = time.perf_counter() - t0
    io.write_json(out / "phantom.json", {"params": params.to_dict(), "seed": params.seed,
                                         "margin_px": m, "tile_grid": dataclasses.asdict(grid),
                                         "timings_s": timings})
    log.info("phantom written to %s in %.1f s: %d bodies, %d synapses, %d tiles", out,
             timings["total"], len(present), len(rows), len(trows))
    return PhantomResult(out, (Z, Y, X), int(len(present)), len(rows), len(trows),
                         [f.to_dict() for f in fl], timings)


def pa_u64(values) -> np.ndarray:
    return np.asarray(values, dtype=np.uint64)


def _fewer_synapses(sites: np.ndarray, radius: np.ndarray, fl: list, margin: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop ``strength`` of the synaptic sites in each ``fewer-synapses`` box (biology, not
    a fault); its own random stream, so the rest of the phantom is drawn as without it."""
    keep = np.ones(len(sites), bool)
    rng = np.random.default_rng([seed, 7919])
    for f in (f for f in fl if f.kind == "fewer-synapses"):
        (z0, z1), (y0, y1), (x0, x1) = (f.region[a] for a in "zyx")
        z, y, x = sites[:, 0], sites[:, 1] - margin, sites[:, 2] - margin
        inside = (z >= z0) & (z < z1) & (y >= y0) & (y < y1) & (x >= x0) & (x < x1)
        keep &= ~(inside & (rng.random(len(sites)) < f.strength))
    return sites[keep], radius[keep]
