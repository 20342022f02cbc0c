"""Appearance statistics of EM sections: the figures that compare a rendering with real
serial-section TEM (issue 10's table), and the fixed non-learned difficulty baseline.

Every function takes section images ``img`` (y, x) or stacks (z, y, x) of grey values
(float or uint8, as the microscope records them: dark = stained) and, where it needs
them, ground-truth labels of the same shape (0 = extracellular space). ``px_nm`` is the
pixel size in nm (y = x). Lengths in the results are nm, grey levels are the image's.

Definitions (the same for the phantom and for real EM):

- ``spectrum_slope``: slope of log radial power vs log spatial frequency, wavelengths
  1000-40 nm (log-spaced bins, Hann-windowed sections, power averaged over sections).
- ``band_shares``: share of the image variance (windowed power, DC excluded) at
  wavelengths 40-200 nm and above 200 nm.
- ``hf_slope``: the same slope from 40 nm down to the Nyquist wavelength (2 px).
- ``smoothed_gradient``: mean gradient magnitude of the image smoothed with a Gaussian
  of sigma 8 nm, per image sd per nm.
- ``immerkaer_noise``: Immerkaer's (1996) noise sd from the 3 x 3 Laplacian difference.
- ``membrane_profile``: mean grey profile across clean two-object label interfaces
  (sampled along the boundary normal at 1 nm, each profile centred on its darkest
  point within 10 nm of the interface). FWHM of its dip below the cytoplasm level
  (36-50 nm out); ``rim`` = the brightest level 12-24 nm out minus that level.
- ``eta2``: share of the variance of interior pixels (>= 30 nm from any boundary)
  explained by object identity, and the between-object sd over the image sd.
- ``grey_shape``: skewness and (p99 - p50) / sd of all pixels.
- ``adjacent_correlation``: mean Pearson correlation of consecutive (aligned) sections.
- ``difficulty``: the fixed baseline (Gaussian sigma 4 nm -> z-score threshold k = 1.2
  -> distance transform -> h-maxima h = 32 nm -> watershed) scored against the labels
  with scikit-image's variation of information (sum of both conditional entropies)
  and adapted Rand error, label 0 ignored.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy import stats


def _boundaries(lab: np.ndarray) -> np.ndarray:
    """Pixels (y, x) with a 4-neighbour of another label."""
    b = np.zeros(lab.shape, dtype=bool)
    dy = lab[1:] != lab[:-1]
    b[1:] |= dy
    b[:-1] |= dy
    dx = lab[:, 1:] != lab[:, :-1]
    b[:, 1:] |= dx
    b[:, :-1] |= dx
    return b


def _power2d(stack: np.ndarray, px_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean windowed 2-D power spectrum of sections (z, y, x) and |k| (cycles/nm)."""
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim == 2:
        stack = stack[None]
    _, ny, nx = stack.shape
    win = np.outer(np.hanning(ny), np.hanning(nx))
    p = np.zeros((ny, nx))
    for s in stack:
        f = np.fft.fft2((s - s.mean()) * win)
        p += np.abs(f) ** 2
    p /= len(stack)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny, d=px_nm), np.fft.fftfreq(nx, d=px_nm),
                              indexing="ij"))
    return k, p


def _slope(k: np.ndarray, p: np.ndarray, k_lo: float, k_hi: float, nbins: int = 14) -> float:
    edges = np.logspace(math.log10(k_lo), math.log10(k_hi), nbins + 1)
    lk, lp = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        m = (k >= a) & (k < b)
        if m.sum() >= 2:
            lk.append(np.log(k[m]).mean())
            lp.append(np.log(p[m].mean()))
    if len(lk) < 3:
        return float("nan")
    return float(np.polyfit(lk, lp, 1)[0])


def spectrum_figures(stack: np.ndarray, px_nm: float) -> dict[str, float]:
    """spectrum_slope (1000-40 nm), hf_slope (40 nm - Nyquist), share_40_200, share_gt200."""
    k, p = _power2d(stack, px_nm)
    nyq = 0.5 / px_nm
    tot = p[k > 0].sum()
    return {
        "spectrum_slope": _slope(k, p, 1 / 1000.0, 1 / 40.0),
        "hf_slope": _slope(k, p, 1 / 40.0, nyq, nbins=6),
        "share_40_200": float(p[(k >= 1 / 200.0) & (k < 1 / 40.0)].sum() / tot),
        "share_gt200": float(p[(k > 0) & (k < 1 / 200.0)].sum() / tot),
    }


def smoothed_gradient(img: np.ndarray, px_nm: float, sigma_nm: float = 8.0) -> float:
    """Mean |grad| of the image smoothed with sigma_nm, per image sd per nm."""
    img = np.asarray(img, dtype=np.float64)
    s = sigma_nm / px_nm
    g = ndi.gaussian_filter(img, s)
    gy, gx = np.gradient(g, px_nm)
    c = int(math.ceil(3 * s)) + 1
    mag = np.hypot(gy, gx)[c:-c, c:-c]
    return float(mag.mean() / img[c:-c, c:-c].std())


def immerkaer_noise(img: np.ndarray) -> float:
    """Immerkaer's fast noise variance estimate, as an sd (grey levels)."""
    img = np.asarray(img, dtype=np.float64)
    n = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    c = ndi.convolve(img, n)[1:-1, 1:-1]
    h, w = img.shape
    return float(math.sqrt(math.pi / 2) * np.abs(c).sum() / (6.0 * (w - 2) * (h - 2)))


def _normals(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal (ny, nx) of label boundaries from the structure tensor of the edge map."""
    e = ndi.gaussian_filter(_boundaries(lab).astype(np.float64), 1.0)
    gy, gx = ndi.sobel(e, 0), ndi.sobel(e, 1)
    jyy = ndi.gaussian_filter(gy * gy, 2.0)
    jxx = ndi.gaussian_filter(gx * gx, 2.0)
    jxy = ndi.gaussian_filter(gx * gy, 2.0)
    theta = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # dominant gradient direction
    return np.sin(theta), np.cos(theta)


def membrane_profile(img: np.ndarray, lab: np.ndarray, px_nm: float, *,
                     half_nm: float = 60.0, max_profiles: int = 3000,
                     rng: np.random.Generator | None = None
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean grey profile (t nm, grey) across clean interfaces of two objects; and its count.

    An interface is clean when the labels along the normal are only the two objects,
    one on each side, out to 40 nm (no junction, no third object, no ECS).
    """
    rng = rng or np.random.default_rng(0)
    img = np.asarray(img, dtype=np.float64)
    lab = np.asarray(lab)
    ny_, nx_ = _normals(lab)
    cand = []
    for axis in (0, 1):
        a = lab[:-1, :] if axis == 0 else lab[:, :-1]
        b = lab[1:, :] if axis == 0 else lab[:, 1:]
        m = (a != b) & (a > 0) & (b > 0)
        pts = np.argwhere(m).astype(np.float64)
        off = np.array([0.5, 0.0]) if axis == 0 else np.array([0.0, 0.5])
        cand.append(pts + off)
    pts = np.concatenate(cand) if cand else np.zeros((0, 2))
    if len(pts) == 0:
        return np.zeros(0), np.zeros(0), 0
    pts = pts[rng.permutation(len(pts))[: 6 * max_profiles]]
    iy = np.clip(np.round(pts[:, 0]).astype(int), 0, lab.shape[0] - 1)
    ix = np.clip(np.round(pts[:, 1]).astype(int), 0, lab.shape[1] - 1)
    nrm = np.stack([ny_[iy, ix], nx_[iy, ix]], axis=1)
    t = np.arange(-half_nm - 12, half_nm + 12.5, 1.0)
    yy = pts[:, 0, None] + nrm[:, 0, None] * t[None] / px_nm
    xx = pts[:, 1, None] + nrm[:, 1, None] * t[None] / px_nm
    inside = ((yy >= 1) & (yy <= lab.shape[0] - 2) & (xx >= 1) & (xx <= lab.shape[1] - 2)).all(1)
    yy, xx = yy[inside], xx[inside]
    if len(yy) == 0:
        return np.zeros(0), np.zeros(0), 0
    labs = ndi.map_coordinates(lab.astype(np.float64), [yy.ravel(), xx.ravel()], order=0,
                               mode="nearest").reshape(yy.shape)
    neg = (t >= -40) & (t <= -6)
    pos = (t >= 6) & (t <= 40)
    la, lb = labs[:, neg], labs[:, pos]
    clean = ((la == la[:, :1]).all(1) & (lb == lb[:, :1]).all(1) & (la[:, 0] != lb[:, 0])
             & (la[:, 0] > 0) & (lb[:, 0] > 0))
    yy, xx = yy[clean][:max_profiles], xx[clean][:max_profiles]
    if len(yy) == 0:
        return np.zeros(0), np.zeros(0), 0
    prof = ndi.map_coordinates(img, [yy.ravel(), xx.ravel()], order=3,
                               mode="nearest").reshape(yy.shape)
    sm = ndi.uniform_filter1d(prof, 3, axis=1)
    centre = np.flatnonzero(np.abs(t) <= 10)
    shift = centre[np.argmin(sm[:, centre], axis=1)] - int(np.flatnonzero(t == 0)[0])
    keep = np.abs(t) <= half_nm
    idx = np.flatnonzero(keep)[None, :] + shift[:, None]
    aligned = np.take_along_axis(prof, idx, axis=1)
    return t[keep], aligned.mean(axis=0), int(len(aligned))


def profile_figures(t: np.ndarray, g: np.ndarray) -> dict[str, float]:
    """fwhm_nm, depth (grey), rim (grey) of a mean membrane profile."""
    if len(t) == 0:
        return {"fwhm_nm": float("nan"), "depth": float("nan"), "rim": float("nan")}
    far = (np.abs(t) >= 36) & (np.abs(t) <= 50)
    base = float(g[far].mean())
    i0 = int(np.argmin(np.abs(t)))
    gmin = float(g[i0 - 3: i0 + 4].min())
    half = gmin + 0.5 * (base - gmin)
    j = int(np.argmin(g[i0 - 3: i0 + 4])) + i0 - 3

    def cross(step: int) -> float:
        k = j
        while 0 < k < len(t) - 1 and g[k] < half:
            k += step
        k0 = k - step
        a, b = g[k0], g[k]
        f = (half - a) / (b - a) if b != a else 0.0
        return float(t[k0] + f * (t[k] - t[k0]))

    rim_zone = (np.abs(t) >= 12) & (np.abs(t) <= 24)
    left = g[rim_zone & (t < 0)].max()
    right = g[rim_zone & (t > 0)].max()
    return {"fwhm_nm": cross(1) - cross(-1), "depth": base - gmin,
            "rim": float(0.5 * (left + right) - base)}


def eta2(img: np.ndarray, lab: np.ndarray, px_nm: float, min_dist_nm: float = 30.0
         ) -> dict[str, float]:
    """eta2 of interior pixels by object, and between-object sd / image sd."""
    img = np.asarray(img, dtype=np.float64)
    dist = ndi.distance_transform_edt(~_boundaries(lab), sampling=px_nm)
    m = (dist >= min_dist_nm) & (lab > 0)
    ids, inv, cnt = np.unique(lab[m], return_inverse=True, return_counts=True)
    v = img[m]
    ok = cnt[inv] >= 10
    v, inv = v[ok], inv[ok]
    if v.size < 100:
        return {"eta2": float("nan"), "between_sd_ratio": float("nan")}
    sums = np.bincount(inv, weights=v)
    n = np.bincount(inv)
    keep = n > 0
    means = sums[keep] / n[keep]
    mu = v.mean()
    between = float(np.sum(n[keep] * (means - mu) ** 2))
    total = float(np.sum((v - mu) ** 2))
    bsd = math.sqrt(between / n[keep].sum())
    return {"eta2": between / total, "between_sd_ratio": bsd / float(img.std())}


def grey_shape(stack: np.ndarray) -> dict[str, float]:
    """Skewness and (p99 - p50) / sd of all pixels."""
    v = np.asarray(stack, dtype=np.float64).ravel()
    p50, p99 = np.percentile(v, [50, 99])
    return {"skew": float(stats.skew(v)), "tail": float((p99 - p50) / v.std())}


def adjacent_correlation(stack: np.ndarray) -> float:
    """Mean Pearson correlation of consecutive sections (z, y, x), already aligned."""
    s = np.asarray(stack, dtype=np.float64)
    return float(np.mean([np.corrcoef(s[z].ravel(), s[z + 1].ravel())[0, 1]
                          for z in range(len(s) - 1)]))


def baseline_segmentation(img: np.ndarray, px_nm: float, k: float = 1.2,
                          sigma_nm: float = 4.0, h_nm: float = 32.0) -> np.ndarray:
    """The fixed non-learned baseline: smooth, threshold dark pixels, watershed of the
    distance transform from h-maxima markers. Returns labels (y, x), every pixel labelled."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    g = ndi.gaussian_filter(np.asarray(img, dtype=np.float64), sigma_nm / px_nm)
    z = (g - g.mean()) / g.std()
    inside = z > -k
    dist = ndi.distance_transform_edt(inside, sampling=px_nm)
    markers, _ = ndi.label(h_maxima(dist, h_nm))
    return watershed(-dist, markers)


def difficulty(img: np.ndarray, lab: np.ndarray, px_nm: float) -> dict[str, float]:
    """VI (split + merge) and adapted Rand error of the baseline against ``lab``."""
    from skimage.metrics import adapted_rand_error, variation_of_information

    seg = baseline_segmentation(img, px_nm)
    lab = np.asarray(lab).astype(np.int64)
    h = variation_of_information(lab, seg, ignore_labels=(0,))
    are = adapted_rand_error(lab, seg, ignore_labels=(0,))[0]
    return {"vi": float(sum(h)), "vi_split": float(h[1]), "vi_merge": float(h[0]),
            "arand": float(are)}


def vesicle_profile(img: np.ndarray, centres_px: np.ndarray, px_nm: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean radial grey profile (r nm, grey) around vesicle centres (n, 2) (y, x px)."""
    img = np.asarray(img, dtype=np.float64)
    r = np.arange(0.0, 60.0, 1.0)
    if len(centres_px) == 0:
        return r, np.full(r.shape, np.nan)
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    yy = centres_px[:, 0, None, None] + (r[None, :, None] * np.sin(ang)[None, None]) / px_nm
    xx = centres_px[:, 1, None, None] + (r[None, :, None] * np.cos(ang)[None, None]) / px_nm
    prof = ndi.map_coordinates(img, [yy.ravel(), xx.ravel()], order=3,
                               mode="nearest").reshape(yy.shape).mean(axis=(0, 2))
    return r, prof


def in_plane_share(area_z: np.ndarray, area_y: np.ndarray, area_x: np.ndarray) -> float:
    """Share of synapses whose cleft lies within 45 degrees of the section plane (z face
    area above the norm of the y and x face areas)."""
    az = np.asarray(area_z, dtype=float)
    if az.size == 0:
        return float("nan")
    return float(np.mean(az > np.hypot(area_y, area_x)))


def dark_area_per_synapse(stack: np.ndarray, clefts: np.ndarray, threshold: float,
                          px_nm: float, grow_px: int = 2) -> float:
    """Mean area (um^2) per synapse and section of pixels at or below ``threshold``
    grey within the synapse's zone (grown by ``grow_px``)."""
    areas = []
    for z in range(len(stack)):
        c = clefts[z]
        ids = np.unique(c[c > 0])
        for sid in ids:
            m = ndi.binary_dilation(c == sid, iterations=grow_px)
            areas.append(float(np.count_nonzero(m & (stack[z] <= threshold))))
    if not areas:
        return float("nan")
    return float(np.mean(areas)) * px_nm * px_nm / 1e6


def recorded_stack(out: str | Path) -> np.ndarray:
    """The tiles of a phantom directory laid at their nominal positions: (z, y, x) float32.

    This is the recorded section in the ground-truth frame when the phantom was rendered
    without stage or section displacement (drift, jitter and placement error 0, no
    vignetting or per-tile gain/offset), as ``phantom_figures`` expects."""
    import json

    from pipeline.ingest.manifest import read_tile

    out = Path(out)
    m = json.loads((out / "manifest.json").read_text())
    z, y, x = m["shape"]
    stack = np.zeros((z, y, x), dtype=np.float32)
    for s in m["sections"]:
        for t in s["tiles"]:
            tile = read_tile(out / t["file"]).astype(np.float32)
            ty, tx = int(t["y"]), int(t["x"])
            h, w = min(tile.shape[0], y - ty), min(tile.shape[1], x - tx)
            stack[s["z"], ty:ty + h, tx:tx + w] = tile[:h, :w]
    return stack


def phantom_figures(out: str | Path, px: float, crop_um: float = 2.5) -> dict:
    """Every figure of this module for a phantom directory rendered without displacement
    (see ``recorded_stack``), plus those that need its ground truth (vesicles, synapse
    clefts, mitochondria) when present."""
    import zarr

    out = Path(out)
    img = recorded_stack(out)
    lab = zarr.open_array(str(out / "gt" / "labels.zarr"), mode="r")[...]
    f: dict = {}
    f.update(spectrum_figures(img, px))
    f["smoothed_gradient"] = float(np.mean([smoothed_gradient(s, px) for s in img]))
    f["noise_sd"] = float(np.mean([immerkaer_noise(s) for s in img]))
    t, g, n = membrane_profile(img[len(img) // 2], lab[len(img) // 2], px)
    for z in (len(img) // 4, 3 * len(img) // 4):
        t2, g2, n2 = membrane_profile(img[z], lab[z], px)
        if n2:
            g = (g * n + g2 * n2) / (n + n2)
            n += n2
    f.update(profile_figures(t, g))
    f["membrane_grey"] = float(g[np.abs(t) <= 3].min()) if n else float("nan")
    f["profiles"] = n
    e = [eta2(s, ls, px) for s, ls in zip(img, lab, strict=True)]
    f["eta2"] = float(np.nanmean([v["eta2"] for v in e]))
    f["between_sd_ratio"] = float(np.nanmean([v["between_sd_ratio"] for v in e]))
    f.update(grey_shape(img))
    f["adjacent_corr"] = adjacent_correlation(img)
    c = int(round(crop_um * 1000 / px))
    zs = range(0, len(img), max(1, len(img) // 4))
    d = [difficulty(img[z, :c, :c], lab[z, :c, :c], px) for z in zs]
    f["vi"] = float(np.mean([v["vi"] for v in d]))
    f["arand"] = float(np.mean([v["arand"] for v in d]))
    if (out / "gt" / "vesicles.parquet").exists():
        f.update(ground_truth_figures(out, img, px, threshold=f["membrane_grey"]))
    return f


def ground_truth_figures(out: Path, img: np.ndarray, px: float, threshold: float) -> dict:
    """Figures that need the phantom's organelle and synapse ground truth: vesicle
    diameter (truth, and the ring seen in the image), share of in-plane and lateral
    clefts, polyadic share of sites, dark area per synapse and section, and the depth
    of the mitochondrial envelope relative to the plasma membranes'."""
    import pyarrow.parquet as pq
    import zarr


    v = pq.read_table(out / "gt" / "vesicles.parquet").to_pydict()
    s = pq.read_table(out / "gt" / "synapses.parquet").to_pydict()
    clefts = zarr.open_array(str(out / "gt" / "clefts.zarr"), mode="r")[...]
    f: dict = {"vesicle_diameter_nm": float(np.median(v["diameter_nm"])) if v["z"] else None,
               "vesicles": len(v["z"]), "synapses": len(s["synapse_id"])}
    vz = np.array(v["z"])
    cen = np.stack([v["y"], v["x"]], axis=1) if len(vz) else np.zeros((0, 2))
    profs = []
    for z in range(len(img)):
        sel = np.abs(vz - z) < 0.1
        if sel.sum() >= 5:
            r, g = vesicle_profile(img[z], cen[sel], px)
            profs.append((g, int(sel.sum())))
    if profs:
        g = sum(p * n for p, n in profs) / sum(n for _, n in profs)
        i = int(np.argmin(g[8:30])) + 8
        f["vesicle_ring_diameter_nm"] = float(2 * r[i])
        f["vesicle_ring_depth"] = float(g[40:60].mean() - g[i])
    if s["synapse_id"]:
        f["in_plane_share"] = in_plane_share(s["area_z_nm2"], s["area_y_nm2"],
                                                s["area_x_nm2"])
        f["lateral_share"] = 1.0 - f["in_plane_share"]
        sites, counts = np.unique(s["site_id"], return_counts=True)
        f["polyadic_share"] = float(np.mean(counts > 1))
        f["dark_area_um2"] = dark_area_per_synapse(img, clefts, threshold, px)
    if (out / "gt" / "mito.zarr").exists():
        mito = zarr.open_array(str(out / "gt" / "mito.zarr"), mode="r")[...] > 0
        lab = zarr.open_array(str(out / "gt" / "labels.zarr"), mode="r")[...].astype(np.int64)
        z = len(img) // 2
        # only mitochondrion | cytoplasm interfaces: 2 inside, 1 everywhere else
        t, g, n = membrane_profile(img[z], 1 + mito[z].astype(np.int64), px)
        tp, gp, n_p = membrane_profile(img[z], lab[z], px)
        if n >= 50 and n_p >= 50:
            f["mito_envelope_ratio"] = (profile_figures(t, g)["depth"]
                                        / profile_figures(tp, gp)["depth"])
    return f
