"""Section registration: translations plus regularised local fields, solved globally.

Conventions. Every section has a stitched mosaic ``M_z`` (y, x) px on a common
canvas (the nominal tile layout's bounding box). Its content is displaced:
``M_z(p) = E_z(p - D_z - u_z(p))`` where ``E_z`` is the section in the nominal
frame, ``D_z`` (2,) its translation and ``u_z`` a small smooth field. The aligned
section is then ``A_z(q) = M_z(q + D_z + u_z(q))``.

1. :func:`match_sections` matches each usable section against its nearest
   previous usable section, going further back (up to ``neighbours``) only
   when that fails or is itself cut off, so one damaged or missing section
   never breaks the chain. A match of ``M_z`` (moving) against ``M_z'`` (reference) measures
   ``D_z' - D_z``.
   Each pair is the trimmed mean of block-matching vectors over overlapping
   patches of the sections' cytoplasm texture (:func:`texture_image`,
   :func:`match_pair`), with a standard error from their spread.
2. :func:`solve_translations` solves all ``D`` at once by weighted least
   squares (weights 1/standard error, :func:`pair_weight`), with a
   weak smoothness tie between consecutive sections that only matters where
   there are no matches, dropping the worst-fitting pair while any residual
   exceeds the limit. Gauge: the mean ``D`` over usable sections is zero.
   Errors of single pairs therefore average out instead of accumulating into
   drift, as in TrakEM2's and EM_aligner's global solves.
3. :func:`match_patches` + :func:`solve_fields`: block matching (texture
   images again) on a mesh of nodes for every kept pair, vectors filtered by
   quality and by deviation from the local median (SOFIMA), then per node a
   least-squares solve over all sections with a spring of stiffness
   ``mesh_stiffness`` pulling each node to the rigid solution, and in-plane
   Gaussian smoothing of the field.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from pipeline.align.params import AlignParams
from pipeline.align.warp import Field
from pipeline.align.xcorr import Match, match
from pipeline.common.lsq import solve_differences

log = logging.getLogger(__name__)

Mosaic = tuple[np.ndarray, np.ndarray]  # (image (H, W) float32, data mask (H, W) bool)


@dataclasses.dataclass(frozen=True)
class PairMatch:
    """``z`` (moving) matched against ``z_ref``: measured D_zref - D_z, px (y, x)."""

    z: int
    z_ref: int
    match: Match
    accepted: bool  # passed the quality thresholds
    residual_px: float = float("nan")  # |solved - measured| after the global solve
    kept: bool = False  # used in the final solve


def _central(mosaic: Mosaic, size: int) -> Mosaic:
    img, mask = mosaic
    h, w = img.shape
    sy, sx = min(size, h), min(size, w)
    y0, x0 = (h - sy) // 2, (w - sx) // 2
    return img[y0 : y0 + sy, x0 : x0 + sx], mask[y0 : y0 + sy, x0 : x0 + sx]


def texture_image(mosaic: Mosaic, params: AlignParams) -> Mosaic:
    """The fine cytoplasm texture of a section: band-passed, membranes and organelles zeroed.

    Neurites cross the 40 nm sections obliquely, so everything with a shape
    (membranes, mitochondria, whole dendrites) moves a little between sections
    with the tissue; matched as they are, their mean motion becomes a bias of
    every pair that the global solve turns into drift. Granular cytoplasm has
    no direction and does not move. Pixels darker than ``median -
    texture_dark_fraction * (median - p5)`` (after a 1.5 px blur), grown by
    ``texture_dilate_px``, are masked and filled from their surroundings; a
    difference of Gaussians (``texture_band_px``) keeps the granule scale and
    drops both pixel noise and object-scale shading; the masked pixels are 0.
    """
    img, mask = mosaic
    if not mask.any():
        return mosaic
    x = np.where(mask, img, np.float32(img[mask].mean())).astype(np.float32)
    s = ndimage.gaussian_filter(x, 1.5)
    med, p5 = np.percentile(s[mask], [50, 5])
    structure = s < med - params.texture_dark_fraction * (med - p5)
    if params.texture_dilate_px > 0:
        structure = ndimage.binary_dilation(structure, iterations=params.texture_dilate_px)
    keep = mask & ~structure
    lo, hi = params.texture_band_px
    weight = ndimage.gaussian_filter(keep.astype(np.float32), hi)
    filled = ndimage.gaussian_filter(np.where(keep, x, 0), hi) / np.maximum(weight, 1e-3)
    x = np.where(keep, x, filled)
    band = ndimage.gaussian_filter(x, lo) - ndimage.gaussian_filter(x, hi)
    band[~keep] = 0
    return band, mask


def matching_image(mosaic: Mosaic, params: AlignParams) -> Mosaic:
    """What section-to-section matching sees: the texture image, or the mosaic itself."""
    return texture_image(mosaic, params) if params.texture else mosaic


def robust_mean(
    vec: np.ndarray, trim: float, overlap_factor: float = 1.0
) -> tuple[np.ndarray, float]:
    """Trimmed mean of vectors (n, 2) px and its standard error (px, Euclidean).

    The ``trim`` fraction furthest from the median is dropped, the rest
    averaged; with a large ``trim`` (0.75) it estimates the mode of the
    vectors (used to be the defence against obliquely moving neurites before
    matching moved to texture images). ``overlap_factor`` (<= 1) scales the
    count to independent samples when patches overlap.
    """
    med = np.median(vec, axis=0)
    v = vec
    if trim > 0 and len(vec) >= 4:
        dist = np.hypot(*(vec - med).T)
        v = vec[dist <= np.quantile(dist, 1.0 - trim)]
    n_eff = max(1.0, len(v) * overlap_factor)
    se = float(np.sqrt(v.var(axis=0).sum() / n_eff)) if len(v) > 1 else float("nan")
    return v.mean(axis=0), se


def match_pair(
    ref: Mosaic, mov: Mosaic, params: AlignParams,
    images: tuple[Mosaic, Mosaic] | None = None,
) -> Match:
    """Translation D_ref - D_mov of two sections: whole-section match, then patch mean.

    The coarse shift comes from phase correlation of the central squares. It
    is refined by block matching on overlapping ``pair_patch_px`` patches
    every ``pair_patch_stride_px`` of both sections' texture images
    (:func:`texture_image`: what moves with the tissue is masked, so the pair
    is not biased by obliquely running neurites), and the accepted vectors
    are combined by a trimmed mean (:func:`robust_mean`). The returned
    ``ncc`` is the median patch NCC and ``se_px`` the standard error from the
    patch spread. When fewer than ``min_patch_fraction`` of the patches
    agree, one whole-section texture match is tried
    (:func:`_whole_texture_match`); a failed pair has ncc -1. ``images``:
    both sections' :func:`matching_image`, when the caller already has them.
    """
    a, am = _central(ref, params.section_match_px)
    b, bm = _central(mov, params.section_match_px)
    coarse = match(
        a, b, max_shift=params.section_max_shift_px, upsample=params.upsample,
        whiten=params.whiten, ref_mask=am, mov_mask=bm,
    )
    start = coarse.shift
    if params.pair_patch_px <= 0:
        ok = coarse.good(params.min_peak_ratio, params.min_sharpness, params.min_ncc)
        return coarse if ok else dataclasses.replace(coarse, ncc=-1.0)
    # small sections: shrink the patches so that at least 3 x 3 of them fit
    scale = min(1.0, min(ref[0].shape) / (2 * params.pair_patch_px))
    size = max(16, int(params.pair_patch_px * scale))
    stride = max(8, min(int((params.pair_patch_stride_px or size) * scale), size // 2))
    mesh = Mesh.for_canvas(ref[0].shape, size, stride)
    ref_m, mov_m = images or (matching_image(ref, params), matching_image(mov, params))
    pm = match_patches(
        ref_m, mov_m, start, np.zeros(2), mesh,
        params.replace(patch_px=size, patch_max_shift_px=params.pair_patch_max_shift_px))
    vec = pm.meas.reshape(-1, 2)
    vec = vec[~np.isnan(vec[:, 0])]
    tried = int(np.sum(~np.isnan(pm.ncc)))
    if tried == 0 or len(vec) < max(3, params.min_patch_fraction * tried):
        if params.texture:
            return _whole_texture_match(ref_m, mov_m, start, params)
        return dataclasses.replace(coarse, ncc=-1.0)
    mean, se = robust_mean(vec, params.pair_trim_fraction, min(1.0, (stride / size) ** 2))
    total = start + mean
    return Match(float(total[0]), float(total[1]), coarse.peak_ratio, coarse.sharpness,
                 float(np.nanmedian(pm.ncc)), len(vec) / max(tried, 1), se)


def _whole_texture_match(ref: Mosaic, mov: Mosaic, start: np.ndarray,
                         params: AlignParams) -> Match:
    """One texture match over the whole sections, for pairs whose patches do not agree.

    Sections two apart (across a missing or damaged one) share too little
    texture for patch-by-patch matching; over the whole section a peak is
    still often clear. Kept only with ``bridge_min_peak_ratio`` and within
    ``pair_patch_max_shift_px`` of ``start``; weight 1 (``pair_sd_default_px``)
    in the solve, so it matters only where nearer pairs are missing.
    """
    reach = float(np.abs(start).max()) + params.pair_patch_max_shift_px
    m = match(ref[0], mov[0], max_shift=reach, upsample=params.upsample, whiten=0.0,
              ref_mask=ref[1], mov_mask=mov[1])
    near = bool(np.all(np.abs(m.shift - start) <= params.pair_patch_max_shift_px))
    if not near or m.peak_ratio < params.bridge_min_peak_ratio:
        return dataclasses.replace(m, ncc=-1.0)
    return m


def match_sections(
    zs: Sequence[int], load: Callable[[int], Mosaic], params: AlignParams
) -> list[PairMatch]:
    """Pair matches for usable sections ``zs`` (ascending); ``load(z)`` gives a mosaic.

    Each section is matched against previous usable sections, nearest first,
    until one match is accepted to a section that is itself matched to an
    earlier one, or ``neighbours`` were tried. The nearest accepted match is
    the pair; further ones only bridge damaged or unmatched sections (a
    folded section may still match the next one, but not the chain): on 40
    nm sections the texture shared two sections apart is weak and such
    matches carry the tissue's motion (measured, see BENCHMARKS.md).
    Accepted: NCC >= ``pair_min_ncc`` (failed matches have -1). Only the
    last ``neighbours`` mosaics are kept in memory.
    """
    k = max(1, params.neighbours)
    cache: dict[int, tuple[Mosaic, Mosaic]] = {}  # z -> (mosaic, its matching image)
    out: list[PairMatch] = []
    linked = set(zs[:1])  # sections with an accepted match to an earlier one
    for idx, z in enumerate(zs):
        mosaic = load(z)
        cache[z] = (mosaic, matching_image(mosaic, params))
        for z_ref in reversed(zs[max(0, idx - k) : idx]):
            (ref, ref_m), (mov, mov_m) = cache[z_ref], cache[z]
            m = match_pair(ref, mov, params, (ref_m, mov_m))
            ok = m.ncc >= params.pair_min_ncc
            out.append(PairMatch(z, z_ref, m, ok))
            if ok:
                linked.add(z)
                if z_ref in linked:  # else z_ref is cut off (damaged?): bridge past it too
                    break
        for old in [q for q in cache if q < zs[max(0, idx - k)]]:
            del cache[old]
    return out


def pair_weight(m: Match, params: AlignParams) -> float:
    """Least-squares weight of a pair: 1 / its standard error per axis, relative to the default.

    The standard error comes from the spread of the patch vectors
    (:func:`robust_mean`), floored at ``pair_sd_floor_px``; a pair without one
    gets ``pair_sd_default_px`` and thus weight 1. Precise pairs count more, so
    noisy ones (few patches, damaged neighbours) do not set the drift.
    """
    se = m.se_px if np.isfinite(m.se_px) else params.pair_sd_default_px * np.sqrt(2)
    sd_axis = float(np.hypot(se / np.sqrt(2), params.pair_sd_floor_px))
    return params.pair_sd_default_px / max(sd_axis, 1e-6)


def solve_translations(
    zs: Sequence[int], pairs: list[PairMatch], params: AlignParams
) -> tuple[np.ndarray, list[PairMatch]]:
    """Translations D (len(zs), 2) px for sections ``zs``; pairs with residuals filled in.

    Weighted by :func:`pair_weight`. Robust: the accepted pair with the largest
    residual is dropped, and the system re-solved, while that residual exceeds
    ``section_max_residual_px`` (a pair inconsistent with the others — an
    alignment fault). Gauge: mean D = 0.
    """
    kept = [i for i, p in enumerate(pairs) if p.accepted]
    w = [pair_weight(p.match, params) for p in pairs]
    while True:
        eqs = [(pairs[i].z_ref, pairs[i].z, pairs[i].match.shift, w[i]) for i in kept]
        index = {z: i for i, z in enumerate(zs)}
        d = solve_differences(len(zs), [(index[a], index[b], m, wt) for a, b, m, wt in eqs],
                              smooth=params.smoothness_weight, dims=2)
        d = d - d.mean(axis=0) if len(d) else d
        res = {
            i: float(np.hypot(*(d[index[pairs[i].z_ref]] - d[index[pairs[i].z]]
                                - pairs[i].match.shift)))
            for i in kept
        }
        worst = max(res, key=res.get, default=None)
        if worst is None or res[worst] <= params.section_max_residual_px:
            break
        kept.remove(worst)
    out = []
    for i, p in enumerate(pairs):
        r = float(np.hypot(*(d[index[p.z_ref]] - d[index[p.z]] - p.match.shift)))
        out.append(dataclasses.replace(p, residual_px=r, kept=i in kept))
    return d, out


# --- local fields -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mesh:
    """Mesh nodes on the canvas: node (iy, ix) at origin + (iy, ix) * stride, px (y, x)."""

    shape: tuple[int, int]
    origin: tuple[float, float]
    stride: float

    @classmethod
    def for_canvas(cls, canvas: tuple[int, int], patch: int, stride: int) -> Mesh:
        n = [max(1, (c - patch) // stride + 1) for c in canvas]
        origin = tuple((c - (k - 1) * stride) / 2 for c, k in zip(canvas, n, strict=True))
        return cls((n[0], n[1]), (float(origin[0]), float(origin[1])), float(stride))

    def nodes(self) -> np.ndarray:
        """(ny, nx, 2) node positions px (y, x)."""
        iy, ix = np.mgrid[: self.shape[0], : self.shape[1]]
        return np.stack([self.origin[0] + iy * self.stride, self.origin[1] + ix * self.stride], -1)


@dataclasses.dataclass(frozen=True)
class PatchMatches:
    """Block matching of one pair: measured u_zref - u_z per node (ny, nx, 2) px."""

    z: int
    z_ref: int
    meas: np.ndarray  # (ny, nx, 2) px, nan where no accepted vector
    ncc: np.ndarray  # (ny, nx) match quality, nan where not matched
    rejected: int  # vectors dropped by quality or median deviation


def _patch(mosaic: Mosaic, centre: np.ndarray, size: int) -> tuple[Mosaic, np.ndarray] | None:
    img, mask = mosaic
    a = np.round(centre).astype(int) - size // 2
    if a[0] < 0 or a[1] < 0 or a[0] + size > img.shape[0] or a[1] + size > img.shape[1]:
        return None
    m = mask[a[0] : a[0] + size, a[1] : a[1] + size]
    if m.mean() < 0.5:
        return None
    return (img[a[0] : a[0] + size, a[1] : a[1] + size], m), a + size // 2 - centre


def match_patches(
    ref: Mosaic, mov: Mosaic, d_ref: np.ndarray, d_mov: np.ndarray, mesh: Mesh,
    params: AlignParams, z: int = 0, z_ref: int = 0,
) -> PatchMatches:
    """Block matching of ``mov`` against ``ref`` around each node, after the translations.

    The patch of a section around node q is cut at q + D (rounded); with f the
    rounding remainder, the measured shift s gives u_ref - u_mov = s + f_ref - f_mov.
    """
    nodes = mesh.nodes()
    meas = np.full(nodes.shape, np.nan)
    ncc = np.full(mesh.shape, np.nan)
    rejected = 0
    for iy in range(mesh.shape[0]):
        for ix in range(mesh.shape[1]):
            q = nodes[iy, ix]
            pr = _patch(ref, q + d_ref, params.patch_px)
            pm = _patch(mov, q + d_mov, params.patch_px)
            if pr is None or pm is None:
                continue
            (a, am), f_ref = pr
            (b, bm), f_mov = pm
            m = match(a, b, max_shift=params.patch_max_shift_px, upsample=params.upsample,
                      whiten=params.whiten, ref_mask=am, mov_mask=bm)
            ncc[iy, ix] = m.ncc
            if m.good(params.patch_min_peak_ratio, params.patch_min_sharpness,
                      params.patch_min_ncc):
                meas[iy, ix] = m.shift + f_ref - f_mov
            else:
                rejected += 1
    # SOFIMA's filter: drop vectors far from the median of their 3x3 neighbourhood
    dev_limit = params.max_median_deviation_px
    out = meas.copy()
    for iy in range(mesh.shape[0]):
        for ix in range(mesh.shape[1]):
            if np.isnan(meas[iy, ix, 0]):
                continue
            nb = meas[max(0, iy - 1) : iy + 2, max(0, ix - 1) : ix + 2].reshape(-1, 2)
            nb = nb[~np.isnan(nb[:, 0])]
            if len(nb) >= 3 and np.hypot(*(meas[iy, ix] - np.median(nb, 0))) > dev_limit:
                out[iy, ix] = np.nan
                rejected += 1
    return PatchMatches(z, z_ref, out, ncc, rejected)


def solve_fields(
    zs: Sequence[int], patches: list[PatchMatches], mesh: Mesh, params: AlignParams
) -> dict[int, Field]:
    """Per-section fields u_z on the mesh: per node, LS over sections with a spring to 0."""
    n = len(zs)
    index = {z: i for i, z in enumerate(zs)}
    u = np.zeros((n, *mesh.shape, 2))
    for iy in range(mesh.shape[0]):
        for ix in range(mesh.shape[1]):
            eqs = [
                (index[p.z_ref], index[p.z], p.meas[iy, ix], 1.0)
                for p in patches
                if not np.isnan(p.meas[iy, ix, 0])
            ]
            if eqs:
                u[:, iy, ix] = solve_differences(n, eqs, prior=params.mesh_stiffness, dims=2)
    if params.field_smoothing > 0:
        sig = (0, params.field_smoothing, params.field_smoothing, 0)
        u = ndimage.gaussian_filter(u, sig, mode="nearest")
    return {z: Field(u[i], mesh.origin, mesh.stride) for i, z in enumerate(zs)}


def patch_residuals(
    patches: list[PatchMatches], fields: dict[int, Field], mesh: Mesh
) -> list[tuple[int, int, int, int, float]]:
    """(z, z_ref, iy, ix, residual px) of every kept vector after the fields."""
    out = []
    for p in patches:
        pred = fields[p.z_ref].u - fields[p.z].u
        r = np.hypot(*np.moveaxis(pred - p.meas, -1, 0))
        for iy, ix in zip(*np.nonzero(~np.isnan(r)), strict=True):
            out.append((p.z, p.z_ref, int(iy), int(ix), float(r[iy, ix])))
    return out
