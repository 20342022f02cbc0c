"""Synapses where a presynaptic bouton touches a postsynaptic process.

For each candidate site (a bouton centre, or for user labels a sampled contact
point) the voxels of the presynaptic body within the bouton are tested for
6-neighbours of other bodies. Contacts are counted by FACE AREA in nm^2 (a z face
is vy * vx, a y face vz * vx, an x face vz * vy), so a contact seen edge-on in the
sections weighs what it weighs in the tissue; each partner with at least
``min_contact_nm2`` is a candidate, the largest becomes the postsynaptic partner and
a ``polyadic_fraction`` of sites take up to ``max_posts``. The cleft is the contact
within a radius drawn from ``cleft_radius_nm`` of the contact point (in 3-D nm);
the synaptic zone (rendered with a cleft and a PSD, see membranes.py) is the pre
and post voxels within that disc and within 40 nm (pre) or 80 nm (post) of it.

Ground-truth points: ``post`` is the postsynaptic contact voxel nearest the cleft
centre; ``pre`` the presynaptic contact voxel nearest the cleft centre moved up to
3 px into the bouton. Both lie in their bodies, within a few voxels of the contact.
Rows also carry the cleft's face area per axis (``area_z/y/x_nm2``): a cleft whose
z area exceeds the in-plane norm of the other two faces lies within 45 degrees of
the section plane ("in-plane", seen en face).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage as ndi

from pipeline.phantom.morphology import KIND_CODES
from pipeline.phantom.params import PhantomParams

POST_KINDS = np.array([KIND_CODES[k] for k in ("soma", "dendrite", "neurite")])

_DIRS = [(a, s) for a in range(3) for s in (-1, 1)]


@dataclasses.dataclass
class Synapses:
    """rows: one dict per (pre, post) pair, points in voxels (z, y, x) of the given grid.
    zone: int32 (z, y, x), +k on the post side and -k on the pre side of row k-1's
    contact, 0 elsewhere; clouds: [(centre nm (3,), radius nm, pre body)] for vesicles."""

    rows: list[dict]
    zone: np.ndarray
    clouds: list[tuple]


def sample_contact_sites(labels: np.ndarray, params: PhantomParams, rng: np.random.Generator,
                         n_sites: int) -> np.ndarray:
    """Up to ``n_sites`` contact voxels (n, 3) between two nonzero bodies, >= 0.5 um apart."""
    vs = np.asarray(params.voxel_size)
    a, b = labels[:, :, :-1], labels[:, :, 1:]
    cand = np.flatnonzero((a != b) & (a > 0) & (b > 0))
    if cand.size == 0:
        return np.zeros((0, 3), dtype=int)
    pick = rng.choice(cand, size=min(cand.size, 6 * n_sites), replace=False)
    pts = np.stack(np.unravel_index(pick, a.shape), axis=1)
    cell = np.floor(pts * vs / 500.0).astype(np.int64)
    _, first = np.unique(cell, axis=0, return_index=True)
    first = np.sort(first)[:n_sites]
    return pts[first]


def find_synapses(labels: np.ndarray, kind_of: np.ndarray, sites_vx: np.ndarray,
                  site_radius_nm: np.ndarray, params: PhantomParams,
                  rng: np.random.Generator, pre_kinds: tuple[str, ...] = ("axon",)) -> Synapses:
    """Synapses at the given sites (voxel coordinates (n, 3), radii nm (n,))."""
    vs = np.asarray(params.voxel_size, dtype=float)
    face = np.array([vs[1] * vs[2], vs[0] * vs[2], vs[0] * vs[1]])  # nm^2 per axis
    zone = np.zeros(labels.shape, dtype=np.int32)
    clouds: list[tuple] = []
    rows: list[dict] = []
    pre_codes = [KIND_CODES[k] for k in pre_kinds]
    for site_id, (c, rad) in enumerate(zip(np.round(sites_vx).astype(int), site_radius_nm,
                                           strict=True)):
        if np.any(c < 0) or np.any(c >= labels.shape):
            continue
        pre = int(labels[tuple(c)])
        if pre == 0 or int(kind_of[pre]) not in pre_codes:
            continue
        half = np.ceil((rad + 250.0) / vs).astype(int)
        lo = np.maximum(c - half, 0)
        hi = np.minimum(c + half + 1, labels.shape)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        win = labels[sl]
        g = np.meshgrid(*[(np.arange(a, b) - cc) * v for a, b, cc, v in
                          zip(lo, hi, c, vs, strict=True)], indexing="ij", sparse=True)
        dist = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
        pre_mask = (win == pre) & (dist < rad + 60.0)
        pre_pos, post_pos, post_lab, axes = [], [], [], []
        for axis, step in _DIRS:
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            n = win.shape[axis]
            src[axis] = slice(max(0, -step), n - max(0, step))
            dst[axis] = slice(max(0, step), n - max(0, -step))
            nb = win[tuple(dst)]
            m = pre_mask[tuple(src)] & (nb != pre) & (nb != 0)
            if not m.any():
                continue
            ok = np.isin(kind_of[nb[m]], POST_KINDS)
            p = np.argwhere(m)[ok]
            off = np.zeros(3, dtype=int)
            off[axis] = max(0, -step)
            pre_pos.append(p + off)
            off2 = off.copy()
            off2[axis] += step
            post_pos.append(p + off2)
            post_lab.append(nb[m][ok])
            axes.append(np.full(len(p), axis))
        if not post_lab:
            continue
        pre_pos_a = np.concatenate(pre_pos)
        post_pos_a = np.concatenate(post_pos)
        post_lab_a = np.concatenate(post_lab)
        axis_a = np.concatenate(axes)
        area_a = face[axis_a]
        ids, inv = np.unique(post_lab_a, return_inverse=True)
        areas = np.bincount(inv, weights=area_a)
        ok = areas >= params.min_contact_nm2
        ids, areas = ids[ok], areas[ok]
        if ids.size == 0:
            continue
        order = np.argsort(-areas, kind="stable")
        n_post = 1
        if rng.random() < params.polyadic_fraction:
            n_post = min(params.max_posts, ids.size)
        pre_pt_site = None
        r_cleft = float(rng.uniform(*params.cleft_radius_nm))
        for q in ids[order[:n_post]]:
            sel = post_lab_a == q
            pp, qq, ax = pre_pos_a[sel], post_pos_a[sel], axis_a[sel]
            fc = 0.5 * (pp + qq) * vs  # face centres, nm
            wts = face[ax]
            centre = np.average(fc, axis=0, weights=wts)
            anchor = fc[np.argmin(np.sum((fc - centre) ** 2, axis=1))]
            disc = np.sum((fc - anchor) ** 2, axis=1) <= r_cleft ** 2
            pp, qq, ax = pp[disc], qq[disc], ax[disc]
            mid = qq.mean(axis=0)
            post_pt = qq[np.argmin(np.sum(((qq - mid) * vs) ** 2, axis=1))]
            if pre_pt_site is None:
                pre_pt = pp[np.argmin(np.sum(((pp - mid) * vs) ** 2, axis=1))]
                u = (pp.mean(axis=0) - qq.mean(axis=0)) * vs
                u = u / max(np.linalg.norm(u), 1e-9)
                for k in (3, 2, 1):
                    cand = pre_pt + np.round(k * 8.0 * u / vs).astype(int)
                    if np.all(cand >= 0) and np.all(cand < win.shape) and win[tuple(cand)] == pre:
                        pre_pt = cand
                        break
                pre_pt_site = pre_pt
            k_row = len(rows) + 1
            pad = np.ceil(85.0 / vs).astype(int) + 1  # the zone reaches 80 nm from the cleft
            blo = np.maximum(np.minimum(pp.min(0), qq.min(0)) - pad, 0)
            bhi = np.minimum(np.maximum(pp.max(0), qq.max(0)) + pad + 1, win.shape)
            bs = tuple(slice(a, b) for a, b in zip(blo, bhi, strict=True))
            cmask = np.zeros(tuple(bhi - blo), dtype=bool)
            cmask[tuple((pp - blo).T)] = True
            cmask[tuple((qq - blo).T)] = True
            dcon = ndi.distance_transform_edt(~cmask, sampling=vs)
            zw, wb = zone[sl][bs], win[bs]
            zw[(wb == q) & (dcon <= 80.0) & (zw == 0)] = k_row
            zw[(wb == pre) & (dcon <= 40.0) & (zw == 0)] = -k_row
            a3 = np.bincount(ax, minlength=3) * face
            rows.append({
                "site_id": site_id, "pre_id": pre, "post_id": int(q),
                "pre": (pre_pt_site + lo).tolist(), "post": (post_pt + lo).tolist(),
                "contact_vx": int(disc.sum()),
                "area_z_nm2": float(a3[0]), "area_y_nm2": float(a3[1]),
                "area_x_nm2": float(a3[2]),
            })
        if pre_pt_site is not None:
            clouds.append(((pre_pt_site + lo) * vs, 260.0, pre))
    return Synapses(rows, zone, clouds)
