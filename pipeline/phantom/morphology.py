"""Dense neuropil as a label volume: somata, branching dendrites with spines, thin
tortuous axons with en-passant boutons, glia filling the rest, thin extracellular space.

How: skeletons are random walks in physical space (nm) that steer away from an
occupancy grid, so tubes pack densely and rarely cross. Each skeleton segment is
a capsule with a linearly varying radius; a voxel belongs to the capsule that
minimises ``distance - radius`` (nm), so a thick dendrite keeps its shape where a
thin axon touches it. Left-over space is first taken by the neighbouring tubes
(growth by ``expand_nm``), then by glia: a Voronoi partition in a smoothly warped
space (random displacements of ~0.4 seed spacings), so the glial pieces are thin
irregular sheets and processes between the neurites, not straight-edged polygons;
voxels where three or more
objects meet become extracellular space (label 0). Every body is connected
(6-connectivity): a tube cut in two becomes two bodies.

Arrays are (z, y, x); points in nm unless named ``*_vx`` (voxel index units).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import cc3d
import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from pipeline.phantom.params import PhantomParams

log = logging.getLogger(__name__)

KIND_CODES = {"ecs": 0, "soma": 1, "dendrite": 2, "axon": 3, "glia": 4, "neurite": 5}

_CELL_NM = 100.0  # occupancy grid cell


@dataclasses.dataclass
class Tube:
    """One skeleton: points (n, 3) nm (z, y, x), radii (n,) nm, the body it belongs to."""

    body: int
    kind: str
    points: np.ndarray
    radii: np.ndarray


@dataclasses.dataclass
class Morphology:
    """The generated tissue on the padded grid.

    labels: (z, y, x) uint32 body ids, 0 = extracellular space.
    kind_of: (n_bodies + 1,) uint8 kind code (KIND_CODES) indexed by body id.
    mito: (z, y, x) bool mitochondria (inside their body).
    boutons_vx: (n, 3) float bouton centres in voxel coordinates (z, y, x).
    bouton_radius_nm: (n,) float.
    nuclei: list of (centre_vx (3,), radius_nm) for somata.
    tubes: the skeletons (nm), for organelles that follow them (microtubules, ER).
    bouton_body: (n,) body id of each bouton.
    """

    labels: np.ndarray
    kind_of: np.ndarray
    mito: np.ndarray
    boutons_vx: np.ndarray
    bouton_radius_nm: np.ndarray
    nuclei: list[tuple[np.ndarray, float]]
    tubes: list[Tube] = dataclasses.field(default_factory=list)
    bouton_body: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))


class _Occupancy:
    def __init__(self, extent_nm: np.ndarray):
        self.shape = np.maximum(1, np.ceil(extent_nm / _CELL_NM).astype(int))
        self.grid = np.zeros(self.shape, dtype=np.float32)

    def idx(self, p: np.ndarray) -> tuple[np.ndarray, ...]:
        i = np.clip((p / _CELL_NM).astype(int), 0, self.shape - 1)
        return tuple(i.T)

    def mark(self, points: np.ndarray, radii: np.ndarray) -> None:
        lo = np.clip(np.floor((points - radii[:, None]) / _CELL_NM).astype(int), 0, self.shape)
        hi = np.clip(np.floor((points + radii[:, None]) / _CELL_NM).astype(int) + 1, 0,
                     self.shape)
        for a, b in zip(lo, hi, strict=True):
            self.grid[a[0]:b[0], a[1]:b[1], a[2]:b[2]] += 1.0

    def empty_point(self, rng: np.random.Generator) -> np.ndarray:
        free = np.flatnonzero(self.grid.ravel() == 0)
        if free.size == 0:
            free = np.argsort(self.grid.ravel())[: max(1, self.grid.size // 20)]
        cell = np.array(np.unravel_index(int(rng.choice(free)), self.shape))
        return (cell + rng.random(3)) * _CELL_NM


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _walk(start: np.ndarray, direction: np.ndarray, step: float, wiggle: float,
          radius: float, extent: np.ndarray, occ: _Occupancy, rng: np.random.Generator,
          max_len: float) -> np.ndarray:
    """A persistent random walk from ``start`` until it leaves the box; (n, 3) nm."""
    pts = [start]
    d = _unit(direction)
    p = start
    for _ in range(int(max_len / step)):
        cand = _unit(d + wiggle * rng.normal(size=(6, 3)))
        ahead = p + 2.5 * step * cand
        inside = np.all((ahead >= 0) & (ahead < extent), axis=1)
        score = np.where(inside, occ.grid[occ.idx(ahead)], 0.0) + 0.3 * (1 - cand @ d)
        d = cand[int(np.argmin(score))]
        p = p + step * d
        pts.append(p)
        if np.any(p < -radius) or np.any(p > extent + radius):
            break
    return np.array(pts)


def _both_ways(start: np.ndarray, step: float, wiggle: float, radius: float,
               extent: np.ndarray, occ: _Occupancy, rng: np.random.Generator) -> np.ndarray:
    d = _unit(rng.normal(size=3))
    max_len = 3.0 * float(np.linalg.norm(extent)) + 2000.0
    a = _walk(start, d, step, wiggle, radius, extent, occ, rng, max_len)
    b = _walk(start, -d, step, wiggle, radius, extent, occ, rng, max_len)
    return np.concatenate([b[::-1], a[1:]])


def _cap_volume(r: float, h: float) -> float:
    """Volume of a spherical cap of height h on a sphere of radius r (nm^3)."""
    return math.pi * h * h * (3 * r - h) / 3.0


def _inside_len(points: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Length (nm) of each segment whose start lies inside the box."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    inside = np.all((points[:-1] >= 0) & (points[:-1] < extent), axis=1)
    return seg * inside


def grow_axons(params: PhantomParams, target_nm3: float, extent: np.ndarray, occ: _Occupancy,
               rng: np.random.Generator, tubes: list[Tube], boutons: list[tuple],
               body: int) -> int:
    """Append axons (with boutons) until ``target_nm3`` of axon lies in the box; returns
    the last body id used."""
    # axons with en-passant boutons
    grown = 0.0
    while grown < target_nm3:
        body += 1
        r0 = float(rng.uniform(*params.axon_radius_nm))
        pts = _both_ways(occ.empty_point(rng), 80.0, 0.25, r0, extent, occ, rng)
        radii = np.full(len(pts), r0)
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        pos = float(rng.exponential(params.bouton_spacing_nm))
        while pos < s[-1]:
            rb = float(rng.uniform(*params.bouton_radius_nm))
            radii = np.maximum(radii, rb * np.exp(-0.5 * ((s - pos) / (0.9 * rb)) ** 2))
            i = int(np.searchsorted(s, pos))
            c = pts[min(i, len(pts) - 1)]
            if np.all((c >= 0) & (c < extent)):
                boutons.append((c, rb, body))
            pos += max(800.0, float(rng.exponential(params.bouton_spacing_nm)))
        occ.mark(pts, radii)
        tubes.append(Tube(body, "axon", pts, radii))
        grown += float(np.sum(_inside_len(pts, extent) * math.pi * radii[:-1] ** 2))
    return body


def grow_skeletons(params: PhantomParams, shape: tuple[int, int, int],
                   rng: np.random.Generator
                   ) -> tuple[list[Tube], list[tuple], list[tuple], _Occupancy]:
    """Skeletons for somata, dendrites (with spines) and axons (with boutons).

    Returns (tubes, boutons, somata, occupancy): boutons are (centre nm (3,), radius nm, body);
    somata (centre nm (3,), radius nm, body).
    """
    vs = np.asarray(params.voxel_size, dtype=float)
    extent = np.asarray(shape, dtype=float) * vs
    volume = float(np.prod(extent))
    occ = _Occupancy(extent)
    tubes: list[Tube] = []
    somata: list[tuple] = []
    boutons: list[tuple] = []
    body = 0

    n_somata = params.somata if params.somata >= 0 else int(volume / 80e9 + 0.5)
    soma_volume = 0.0
    for _ in range(n_somata):
        body += 1
        r = float(rng.uniform(*params.soma_radius_nm))
        ang = rng.uniform(0, 2 * math.pi)
        depth = 0.15 * min(extent[1], extent[2])
        mid = extent / 2
        c = mid + np.array([rng.uniform(-0.3, 0.3) * extent[0], 0.0, 0.0])
        half = np.array([0.0, extent[1] / 2, extent[2] / 2])
        c = c + (np.array([0.0, math.sin(ang), math.cos(ang)]) * (half.max() + r - depth))
        somata.append((c, r, body))
        tubes.append(Tube(body, "soma", c[None, :], np.array([r])))
        occ.mark(c[None, :], np.array([r]))
        soma_volume += _cap_volume(r, depth) * min(1.0, extent[0] / (2 * r))
        for _k in range(2):  # primary dendrites leaving the soma into the box
            toward = _unit(mid - c + rng.normal(size=3) * 0.3 * r)
            start = c + toward * r * 0.9
            rad = float(rng.uniform(*params.dendrite_radius_nm)) * 1.2
            pts = _walk(start, toward, 160.0, 0.12, rad, extent, occ, rng,
                        3 * float(np.linalg.norm(extent)) + 2 * r)
            tubes.append(Tube(body, "soma", pts, np.full(len(pts), rad)))
            occ.mark(pts, np.full(len(pts), rad))

    # dendrites, with a few branches and spines; fractions are of the space somata leave
    volume = max(volume - soma_volume, 0.2 * volume)
    grown = 0.0
    while grown < params.dendrite_fraction * volume:
        body += 1
        r0 = float(rng.uniform(*params.dendrite_radius_nm))
        pts = _both_ways(occ.empty_point(rng), 160.0, 0.15, r0, extent, occ, rng)
        radii = r0 * np.exp(0.1 * np.sin(np.arange(len(pts)) / 15.0 + rng.uniform(0, 6)))
        parts = [(pts, radii)]
        n_branch = rng.poisson(len(pts) * 160.0 / 6000.0)
        for i in rng.integers(0, len(pts), size=n_branch):
            rb = 0.65 * radii[i]
            d = _unit(_unit(rng.normal(size=3)) + _unit(pts[min(i + 1, len(pts) - 1)] - pts[i]))
            bp = _walk(pts[i], d, 160.0, 0.2, rb, extent, occ, rng, 4000.0)
            parts.append((bp, np.full(len(bp), rb)))
        for p, r in parts:
            occ.mark(p, r)
            tubes.append(Tube(body, "dendrite", p, r))
            grown += float(np.sum(_inside_len(p, extent) * math.pi * r[:-1] ** 2))
        length = float(np.sum(_inside_len(pts, extent)))
        for i in rng.integers(0, len(pts), size=rng.poisson(params.spine_rate_per_um
                                                             * length / 1000.0)):
            d = _unit(rng.normal(size=3))
            base = pts[i] + d * radii[i] * 0.8
            neck = float(rng.uniform(400.0, 1000.0))
            n = max(2, int(neck / 150.0))
            sp = base + d[None, :] * np.linspace(0, neck, n)[:, None]
            sr = np.full(n, float(rng.uniform(40.0, 60.0)))
            sr[-1] = float(rng.uniform(170.0, 270.0))
            sp = np.vstack([sp, sp[-1] + d * sr[-1] * 0.8])
            sr = np.append(sr, sr[-1] * 0.6)
            tubes.append(Tube(body, "dendrite", sp, sr))

    body = grow_axons(params, params.axon_fraction * volume, extent, occ, rng, tubes,
                      boutons, body)
    log.debug("grew %d tubes for %d bodies, %d boutons", len(tubes), body, len(boutons))
    return tubes, boutons, somata, occ


def paint_capsule(best: np.ndarray, lab: np.ndarray, value: int, p0: np.ndarray,
                  p1: np.ndarray, r0: float, r1: float, vs: np.ndarray,
                  within: np.ndarray | None = None) -> None:
    """Paint ``value`` into ``lab`` where this capsule (nm, radii r0 -> r1) has the lowest
    ``distance - radius`` so far (kept in ``best``, nm). Voxel i sits at i * vs nm.

    If ``within`` is given (a label volume and ``value`` the body), paint only there.
    """
    rmax = max(r0, r1)
    lo = np.maximum(np.floor((np.minimum(p0, p1) - rmax) / vs).astype(int), 0)
    hi = np.minimum(np.ceil((np.maximum(p0, p1) + rmax) / vs).astype(int) + 1, lab.shape)
    if np.any(hi <= lo):
        return
    z = (np.arange(lo[0], hi[0]) * vs[0] - p0[0])[:, None, None]
    y = (np.arange(lo[1], hi[1]) * vs[1] - p0[1])[None, :, None]
    x = (np.arange(lo[2], hi[2]) * vs[2] - p0[2])[None, None, :]
    d = p1 - p0
    ll = float(d @ d)
    if ll > 0:
        t = np.clip((z * d[0] + y * d[1] + x * d[2]) / ll, 0.0, 1.0)
    else:
        t = np.zeros((1, 1, 1))
    cost = np.sqrt((z - t * d[0]) ** 2 + (y - t * d[1]) ** 2 + (x - t * d[2]) ** 2)
    cost -= r0 + t * (r1 - r0)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    b = best[sl]
    m = cost < b
    if within is not None:
        m &= within[sl] == value
    b[m] = cost[m]
    lab[sl][m] = value


def rasterise(tubes: list[Tube], best: np.ndarray, lab: np.ndarray, vs: np.ndarray) -> None:
    """Paint the tubes' bodies into ``lab`` (z, y, x) uint32 (0 = not covered); ``best``
    (float32, same shape, zeros at first) keeps each voxel's lowest distance - radius."""
    for t in tubes:
        if len(t.points) == 1:
            paint_capsule(best, lab, t.body, t.points[0], t.points[0], t.radii[0], t.radii[0], vs)
        for i in range(len(t.points) - 1):
            paint_capsule(best, lab, t.body, t.points[i], t.points[i + 1], t.radii[i],
                          t.radii[i + 1], vs)


def place_mitochondria(tubes: list[Tube], lab: np.ndarray, vs: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """Mitochondria (bool, z, y, x): capsules along dendrites and in some boutons, kept
    inside their own body. Diameters 0.1-0.3 um, lengths 0.3-1.5 um."""
    mito = np.zeros(lab.shape, dtype=np.uint32)
    best = np.zeros(lab.shape, dtype=np.float32)
    for t in tubes:
        n = len(t.points)
        if t.kind == "soma" or n < 3:
            continue
        seg = float(np.sum(np.linalg.norm(np.diff(t.points, axis=0), axis=1)))
        if t.kind == "dendrite" and t.radii.max() > 150:
            k = rng.poisson(seg / 2500.0)
            idx = rng.integers(1, n - 1, size=k)
        elif t.kind == "axon":
            bump = np.flatnonzero(t.radii > 1.6 * t.radii.min())
            peaks = bump[(t.radii[bump] >= np.maximum(t.radii[bump - 1], t.radii[
                np.minimum(bump + 1, n - 1)]))] if bump.size else bump
            idx = peaks[rng.random(peaks.size) < 0.35]
        else:
            continue
        for i in idx:
            i = int(np.clip(i, 1, n - 2))
            r = float(min(0.42 * t.radii[i], 150.0))
            if r < 45:
                continue
            d = _unit(t.points[i + 1] - t.points[i - 1])
            half = float(rng.uniform(150.0, 700.0)) if t.kind == "dendrite" else r
            c = t.points[i] + _unit(rng.normal(size=3)) * 0.3 * (t.radii[i] - r)
            paint_capsule(best, mito, t.body, c - d * half, c + d * half, r, r, vs, within=lab)
    return mito > 0


def _warp(coords: np.ndarray, extent: np.ndarray, amp_nm: float,
          rng: np.random.Generator, cell_nm: float = 150.0) -> np.ndarray:
    """A smooth random displacement (n, 3) nm at ``coords`` (n, 3) nm, sd ``amp_nm``."""
    shape = np.maximum(2, np.ceil(extent / cell_nm).astype(int) + 1)
    out = np.empty_like(coords)
    idx = (coords / cell_nm).T
    for k in range(3):
        f = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
        f *= amp_nm / max(float(f.std()), 1e-9)
        out[:, k] = ndi.map_coordinates(f, idx, order=1, mode="nearest")
    return out


def fill_and_finish(lab: np.ndarray, kinds: dict[int, str], params: PhantomParams,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Make the tissue dense: grow tubes into gaps, glia take the rest, ECS at junctions,
    every body connected. Returns (labels uint32, kind_of uint8 by body id)."""
    vs = np.asarray(params.voxel_size, dtype=float)
    foot = np.zeros((1, 3, 3), dtype=bool)
    foot[0, 1, :] = foot[0, :, 1] = True
    for _ in range(max(0, int(round(params.expand_nm / vs[1])))):
        empty = lab == 0
        if not empty.any():
            break
        grown = ndi.grey_dilation(lab, footprint=foot)
        lab[empty] = grown[empty]
    empty = np.flatnonzero(lab.ravel() == 0)
    next_id = int(lab.max()) + 1
    if empty.size:
        extent = np.asarray(lab.shape) * vs
        n_seeds = max(1, int(np.prod(extent) / params.glia_seed_spacing_nm ** 3))
        seeds = rng.random((n_seeds, 3)) * extent
        coords = np.stack(np.unravel_index(empty, lab.shape), axis=1) * vs
        coords = coords + _warp(coords, extent, 0.4 * params.glia_seed_spacing_nm, rng)
        _, which = cKDTree(seeds).query(coords, workers=2)
        lab.ravel()[empty] = next_id + which.astype(np.uint32)
        for g in range(n_seeds):
            kinds[next_id + g] = "glia"
    # extracellular space where three or more objects meet in a 2 x 2 (y, x) window
    a, b = lab[:, :-1, :-1], lab[:, 1:, :-1]
    c, d = lab[:, :-1, 1:], lab[:, 1:, 1:]
    distinct = (1 + (b != a) + ((c != a) & (c != b))
                + ((d != a) & (d != b) & (d != c)))
    junction = np.zeros(lab.shape, dtype=bool)
    j = distinct >= 3
    junction[:, :-1, :-1] |= j
    junction[:, 1:, :-1] |= j
    junction[:, :-1, 1:] |= j
    junction[:, 1:, 1:] |= j
    orig_kind = np.zeros(max(kinds) + 2 if kinds else 1, dtype=np.uint8)
    for k, v in kinds.items():
        orig_kind[k] = KIND_CODES[v]
    junction = ndi.binary_dilation(junction, structure=foot)  # ECS ~ 1-4 % of the volume
    lab[junction] = 0
    cc = cc3d.connected_components(lab, connectivity=6, out_dtype=np.uint32)
    n = int(cc.max())
    comp_orig = np.zeros(n + 1, dtype=np.uint32)
    comp_orig[cc.ravel()] = lab.ravel()
    counts = np.bincount(cc.ravel(), minlength=n + 1)
    small = counts < params.min_fragment_vx
    small[0] = True
    keep = np.flatnonzero(~small)
    remap = np.zeros(n + 1, dtype=np.uint32)
    remap[keep] = np.arange(1, keep.size + 1, dtype=np.uint32)
    out = remap[cc]
    kind_of = np.zeros(keep.size + 1, dtype=np.uint8)
    kind_of[1:] = orig_kind[comp_orig[keep]]
    return out, kind_of


def generate(params: PhantomParams, shape: tuple[int, int, int],
             rng: np.random.Generator) -> Morphology:
    """Grow, rasterise and pack a neuropil of ``shape`` voxels (z, y, x)."""
    vs = np.asarray(params.voxel_size, dtype=float)
    tubes, boutons, somata, occ = grow_skeletons(params, shape, rng)
    lab = np.zeros(shape, dtype=np.uint32)
    best = np.zeros(shape, dtype=np.float32)
    rasterise(tubes, best, lab, vs)
    # overlaps make the first pass fall short of the target: top up with more axons
    target = params.dendrite_fraction + params.axon_fraction
    extent = np.asarray(shape, dtype=float) * vs
    for _ in range(3):
        covered = float(np.count_nonzero(lab)) / lab.size
        if covered >= target - 0.02:
            break
        n0 = len(tubes)
        grow_axons(params, 1.2 * (target - covered) * float(np.prod(extent)), extent, occ, rng,
                   tubes, boutons, max(t.body for t in tubes))
        rasterise(tubes[n0:], best, lab, vs)
    log.debug("tubes cover %.3f of the volume (target %.2f)", np.count_nonzero(lab) / lab.size,
              target)
    kinds = {t.body: t.kind for t in tubes}
    mito_rng, fill_rng = rng.spawn(2)
    mito = place_mitochondria(tubes, lab, vs, mito_rng)
    labels, kind_of = fill_and_finish(lab, kinds, params, fill_rng)
    mito &= labels > 0
    bz = np.array([b[0] for b in boutons]).reshape(-1, 3) / vs
    br = np.array([b[1] for b in boutons], dtype=float)
    nuclei = [(c / vs, 0.55 * r) for c, r, _ in somata]
    bb = np.array([b[2] for b in boutons], dtype=np.int64)
    return Morphology(labels, kind_of, mito, bz, br, nuclei, tubes, bb)
