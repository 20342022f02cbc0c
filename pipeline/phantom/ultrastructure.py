"""Where the small organelles go: vesicle clouds, microtubules and ER tubules (nm).

- Vesicles (35-45 nm) fill boutons: a jittered, randomly rotated lattice of
  ``vesicle_spacing_nm`` inside the bouton ball, kept inside the body, off its
  membrane and out of mitochondria; for user labels, a cloud around each
  presynaptic point.
- Microtubules (25 nm tubes, 4.5 nm wall) run along axon and dendrite skeletons at
  ``microtubules_per_um2`` of shaft cross-section, at fixed offsets in a frame
  carried along the skeleton (so they stay in the shaft).
- Smooth ER: wandering tubules (~40 nm) in dendrites, somata and axons.

Everything becomes ``particles.Shells``; what is outside its own body is dropped.
Points are nm (z, y, x) on the padded grid (voxel i at i * voxel size).
"""

from __future__ import annotations

import numpy as np

from pipeline.phantom.params import PhantomParams
from pipeline.phantom.particles import Shells, chain

MT_R, MT_WALL, MT_STEP = 12.5, 4.5, 10.0
ER_R, ER_WALL, ER_STEP = 19.0, 6.0, 10.0


def _inside(points: np.ndarray, labels: np.ndarray, phi: np.ndarray, vs: np.ndarray,
            body: np.ndarray | int, margin: float) -> np.ndarray:
    """Points (n, 3) nm whose voxel is in ``body`` and >= margin nm from its boundary."""
    v = np.round(points / vs).astype(int)
    ok = np.all((v >= 0) & (v < labels.shape), axis=1)
    out = np.zeros(len(points), dtype=bool)
    vi = tuple(v[ok].T)
    out[ok] = (labels[vi] == (body if np.isscalar(body) else np.asarray(body)[ok])) & (
        phi[vi] >= margin)
    return out


def _tube_body(points: np.ndarray, labels: np.ndarray, vs: np.ndarray) -> int:
    """The body a skeleton runs in (most common nonzero label at its points): the label
    volume is renumbered after the skeletons are grown."""
    v = np.round(points / vs).astype(int)
    v = v[np.all((v >= 0) & (v < labels.shape), axis=1)]
    if len(v) == 0:
        return 0
    lab = labels[tuple(v.T)].astype(np.int64)
    lab = lab[lab > 0]
    return int(np.bincount(lab).argmax()) if lab.size else 0


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def vesicles(labels: np.ndarray, phi: np.ndarray, mito: np.ndarray, clouds: list[tuple],
             params: PhantomParams, rng: np.random.Generator) -> Shells:
    """Vesicle clouds; ``clouds`` = [(centre nm (3,), radius nm, body)]."""
    vs = np.asarray(params.voxel_size, dtype=float)
    a = params.vesicle_spacing_nm
    parts = []
    dmin, dmax = params.vesicle_diameter_nm
    for c, rad, body in clouds:
        k = int(np.ceil(rad / a))
        g = np.stack(np.meshgrid(*[np.arange(-k, k + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
        p = (g + rng.uniform(-0.5, 0.5, 3)) * a
        p = p[np.linalg.norm(p, axis=1) < rad]
        p = p @ _rotation(rng).T + rng.normal(0, 0.13 * a, p.shape) + c
        r = 0.5 * rng.uniform(dmin, dmax, len(p))
        ok = _inside(p, labels, phi, vs, int(body), 10.0)
        v = np.round(p / vs).astype(int)
        inb = np.all((v >= 0) & (v < labels.shape), axis=1)
        ok[inb] &= ~mito[tuple(v[inb].T)]
        p, r = p[ok], r[ok]
        if len(p):
            parts.append((p, r))
    if not parts:
        return Shells.empty()
    p = np.concatenate([q for q, _ in parts])
    r = np.concatenate([s for _, s in parts])
    n = len(r)
    # a vesicle replaces cytoplasm: its wall adds membrane minus cytoplasm, its lumen
    # (nearly empty) removes the cytoplasm's density
    wall = np.full(n, params.internal_membrane_od - params.cytoplasm_od)
    return Shells(p, r + 2.75, r - 2.75, wall, np.full(n, -0.6 * params.cytoplasm_od),
                  np.ones(n, dtype=np.int8))


def _frame_offsets(points: np.ndarray, offs: np.ndarray) -> np.ndarray:
    """Offset the polyline (n, 3) by each 2-D offset (m, 2) nm in a parallel-transported
    frame; returns (m, n, 3)."""
    t = np.gradient(points, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)
    a = np.array([1.0, 0.0, 0.0]) if abs(t[0, 0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    n1 = np.empty_like(points)
    prev = a - (a @ t[0]) * t[0]
    for i in range(len(points)):
        v = prev - (prev @ t[i]) * t[i]
        nv = np.linalg.norm(v)
        if nv < 1e-6:
            v = np.cross(t[i], [0.0, 0.0, 1.0])
            nv = np.linalg.norm(v) or 1.0
        prev = v / nv
        n1[i] = prev
    n2 = np.cross(t, n1)
    return points[None] + offs[:, 0, None, None] * n1[None] + offs[:, 1, None, None] * n2[None]


def microtubules(labels: np.ndarray, phi: np.ndarray, tubes: list, params: PhantomParams,
                 rng: np.random.Generator) -> Shells:
    """Microtubule chains along axon, dendrite and primary-dendrite skeletons."""
    vs = np.asarray(params.voxel_size, dtype=float)
    extent = np.asarray(labels.shape) * vs
    pts_all, body_all = [], []
    for t in tubes:
        if len(t.points) < 4 or t.kind not in ("axon", "dendrite", "soma"):
            continue
        r0 = float(np.min(t.radii))
        if r0 < MT_R + 6.0:
            continue
        inb = np.all((t.points > -r0) & (t.points < extent + r0), axis=1)
        if not inb.any():
            continue
        i0, i1 = np.flatnonzero(inb)[[0, -1]]
        pl = t.points[max(0, i0 - 1): i1 + 2]
        n_mt = int(np.clip(rng.poisson(params.microtubules_per_um2 * np.pi * (r0 / 1000) ** 2),
                           1, 60))
        rr = 0.72 * r0 * np.sqrt(rng.random(n_mt))
        th = rng.uniform(0, 2 * np.pi, n_mt)
        body = _tube_body(pl, labels, vs)
        if body == 0:
            continue
        lines = _frame_offsets(pl, np.stack([rr * np.cos(th), rr * np.sin(th)], axis=1))
        for line in lines:
            c = chain(line, MT_STEP)
            pts_all.append(c)
            body_all.append(np.full(len(c), body))
    return _chain_shells(pts_all, body_all, labels, phi, vs, MT_R, MT_WALL, MT_STEP,
                         0.6 * params.internal_membrane_od, -0.3 * params.cytoplasm_od, 2)


def endoplasmic_reticulum(labels: np.ndarray, phi: np.ndarray, tubes: list,
                          params: PhantomParams, rng: np.random.Generator) -> Shells:
    """Wandering smooth-ER tubules: 2.5 per um of dendrite, 0.6 per um of axon."""
    vs = np.asarray(params.voxel_size, dtype=float)
    extent = np.asarray(labels.shape) * vs
    pts_all, body_all = [], []
    for t in tubes:
        if len(t.points) < 4 or t.kind not in ("axon", "dendrite", "soma"):
            continue
        seg = np.linalg.norm(np.diff(t.points, axis=0), axis=1)
        inside = np.all((t.points[:-1] >= 0) & (t.points[:-1] < extent), axis=1)
        length_um = float(seg[inside].sum()) / 1000.0
        rate = 0.6 if t.kind == "axon" else 2.5
        body = _tube_body(t.points, labels, vs)
        if body == 0 or length_um == 0:
            continue
        for _ in range(rng.poisson(rate * length_um)):
            i = int(rng.choice(np.flatnonzero(inside)))
            r = float(t.radii[i])
            start = t.points[i] + rng.normal(size=3) * 0.4 * r
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            steps = int(rng.integers(8, 30))
            path = [start]
            for _s in range(steps):
                d = d + rng.normal(size=3) * 0.5
                d /= np.linalg.norm(d)
                path.append(path[-1] + 25.0 * d)
            c = chain(np.array(path), ER_STEP)
            pts_all.append(c)
            body_all.append(np.full(len(c), body))
    return _chain_shells(pts_all, body_all, labels, phi, vs, ER_R, ER_WALL, ER_STEP,
                         params.internal_membrane_od - params.cytoplasm_od,
                         -0.5 * params.cytoplasm_od, 3)


def _chain_shells(pts_all, body_all, labels, phi, vs, r, wall, step, od, lumen, kind
                  ) -> Shells:
    if not pts_all:
        return Shells.empty()
    p = np.concatenate(pts_all)
    b = np.concatenate(body_all)
    ok = _inside(p, labels, phi, vs, b, r * 0.6)
    p = p[ok]
    n = len(p)
    w = 3.0 * step / (4.0 * r)  # a chain of balls projects like a tube of radius r
    return Shells(p, np.full(n, r), np.full(n, r - wall), np.full(n, od * w),
                  np.full(n, lumen * w), np.full(n, kind, dtype=np.int8))
