"""Phase correlation with a subpixel peak and the peak-quality measures alignment needs.

One pure function, :func:`match`, on two 2-D images of the same shape (y, x).
It returns the translation ``s`` (px, (dy, dx)) such that ``mov(u) ≈ ref(u + s)``
— the same convention as ``skimage.registration.phase_cross_correlation(ref, mov)``
— together with three quality measures (SOFIMA keeps the first two for every
flow vector):

- ``peak_ratio``: height of the correlation peak over the highest other local
  maximum further than ``exclusion_px`` from it (>= 1; ambiguous matches ~1).
- ``sharpness``: peak height over the mean absolute value of the correlation
  surface inside the search window (how much the peak stands out).
- ``ncc``: Pearson correlation of the two images over their overlap at the
  integer peak, in [-1, 1] — an interpretable match quality.

Why our own and not ``skimage.registration.phase_cross_correlation``: skimage
returns the shift and an error estimate but not the correlation surface, so
peak ratio and sharpness cannot be had from it. The subpixel step here is the
same upsampled-DFT refinement (Guizar-Sicairos et al. 2008) skimage uses; a
test checks that both agree.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage


@dataclasses.dataclass(frozen=True)
class Match:
    """A translation between two images and how trustworthy it is."""

    dy: float  # px; mov(u) ≈ ref(u + (dy, dx))
    dx: float  # px
    peak_ratio: float  # first / second correlation peak, >= 1
    sharpness: float  # peak / mean |surface| in the search window
    ncc: float  # Pearson correlation over the overlap at the integer peak, [-1, 1]
    valid_fraction: float = 1.0  # fraction of pixels in both images that carry data
    se_px: float = float("nan")  # standard error of the shift when estimated (patch spread)

    @property
    def shift(self) -> np.ndarray:
        """(dy, dx) as a float array, px."""
        return np.array([self.dy, self.dx])

    def good(self, min_peak_ratio: float, min_sharpness: float, min_ncc: float) -> bool:
        return (
            self.peak_ratio >= min_peak_ratio
            and self.sharpness >= min_sharpness
            and self.ncc >= min_ncc
        )


FAILED = Match(0.0, 0.0, 1.0, 0.0, -1.0, 0.0)


def tukey_window(shape: tuple[int, int], alpha: float = 0.25) -> np.ndarray:
    """Separable Tukey window, float32 (y, x); ``alpha`` = tapered fraction of each axis."""
    from scipy.signal.windows import tukey

    wy = tukey(shape[0], alpha).astype(np.float32)
    wx = tukey(shape[1], alpha).astype(np.float32)
    return np.outer(wy, wx)


def match(
    ref: np.ndarray,
    mov: np.ndarray,
    max_shift: float | None = None,
    upsample: int = 20,
    whiten: float = 0.9,
    exclusion_px: int = 3,
    window_alpha: float = 0.25,
    ref_mask: np.ndarray | None = None,
    mov_mask: np.ndarray | None = None,
) -> Match:
    """Translation of ``mov`` relative to ``ref`` (both (y, x), same shape), px.

    ``max_shift`` bounds |dy| and |dx| (px); ``whiten`` in [0, 1] is the exponent
    of the spectrum normalisation (1 = pure phase correlation, 0 = plain
    cross-correlation); masks mark pixels that carry data (missing tiles are
    filled with the image mean so they add nothing).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = ndimage.gaussian_filter(rng.normal(size=(80, 80)), 2)
    >>> m = match(img[10:74, 10:74], img[13:77, 8:72])
    >>> round(m.dy), round(m.dx)
    (3, -2)
    """
    if ref.shape != mov.shape or ref.ndim != 2:
        raise ValueError(f"expected two 2-D images of one shape, got {ref.shape} and {mov.shape}")
    h, w = ref.shape
    if min(h, w) < 8:
        return FAILED
    a = _prepare(ref, ref_mask, window_alpha)
    b = _prepare(mov, mov_mask, window_alpha)
    if a is None or b is None:
        return FAILED
    valid = 1.0
    if ref_mask is not None or mov_mask is not None:
        m1 = np.ones(ref.shape, bool) if ref_mask is None else ref_mask
        m2 = np.ones(ref.shape, bool) if mov_mask is None else mov_mask
        valid = float(np.mean(m1 & m2))

    fa = np.fft.fft2(a)
    fb = np.fft.fft2(b)
    cps = fa * np.conj(fb)
    if whiten > 0:
        cps = cps / np.maximum(np.abs(cps), 1e-12) ** whiten
    surface = np.fft.ifft2(cps).real

    # search window: circular shifts with |dy|, |dx| <= max_shift
    limit_y = h // 2 if max_shift is None else min(int(np.floor(max_shift)), h // 2)
    limit_x = w // 2 if max_shift is None else min(int(np.floor(max_shift)), w // 2)
    centred = np.fft.fftshift(surface)
    cy, cx = h // 2, w // 2
    win = centred[cy - limit_y : cy + limit_y + 1, cx - limit_x : cx + limit_x + 1]
    iy, ix = np.unravel_index(int(np.argmax(win)), win.shape)
    peak = float(win[iy, ix])
    shift = np.array([iy - limit_y, ix - limit_x], dtype=float)

    sharpness = peak / max(float(np.mean(np.abs(win))), 1e-12)
    ratio = peak_ratio(win, (iy, ix), exclusion_px)
    ncc = _overlap_ncc(ref, mov, ref_mask, mov_mask, shift.astype(int))
    if upsample > 1:
        start = shift.astype(int)
        shift = refine(ref, mov, start, ref_mask, mov_mask)
        if np.any(np.round(shift).astype(int) != start):  # re-centre once on the new peak
            start = np.round(shift).astype(int)
            shift = refine(ref, mov, start, ref_mask, mov_mask)
    return Match(float(shift[0]), float(shift[1]), ratio, sharpness, ncc, valid)


def _prepare(img: np.ndarray, mask: np.ndarray | None, alpha: float) -> np.ndarray | None:
    x = np.asarray(img, dtype=np.float32)
    if mask is not None:
        if not mask.any():
            return None
        mean = float(x[mask].mean())
        x = np.where(mask, x, mean)
    x = x - x.mean()
    if float(np.abs(x).max()) == 0.0:
        return None
    return x * tukey_window(x.shape, alpha) if alpha > 0 else x


def peak_ratio(win: np.ndarray, at: tuple[int, int], exclusion_px: int = 3) -> float:
    """Peak over the highest other local maximum further than ``exclusion_px``."""
    peak = win[at]
    local_max = ndimage.maximum_filter(win, size=3, mode="nearest") == win
    yy, xx = np.ogrid[: win.shape[0], : win.shape[1]]
    far = (np.abs(yy - at[0]) > exclusion_px) | (np.abs(xx - at[1]) > exclusion_px)
    others = win[local_max & far]
    if others.size == 0:
        return float("inf") if peak > 0 else 1.0
    second = float(others.max())
    if second <= 0:
        return float("inf") if peak > 0 else 1.0
    return float(peak / second)


def _overlap_ncc(
    ref: np.ndarray,
    mov: np.ndarray,
    ref_mask: np.ndarray | None,
    mov_mask: np.ndarray | None,
    shift: np.ndarray,
) -> float:
    """Pearson correlation of ref(u + s) and mov(u) over the pixels both cover."""
    h, w = ref.shape
    dy, dx = int(shift[0]), int(shift[1])
    # mov(u) pairs with ref(u + s): u ranges where both in bounds
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    if y1 - y0 < 4 or x1 - x0 < 4:
        return -1.0
    b = mov[y0:y1, x0:x1].astype(np.float64)
    a = ref[y0 + dy : y1 + dy, x0 + dx : x1 + dx].astype(np.float64)
    keep = np.ones(a.shape, bool)
    if ref_mask is not None:
        keep &= ref_mask[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    if mov_mask is not None:
        keep &= mov_mask[y0:y1, x0:x1]
    if keep.sum() < 16:
        return -1.0
    a, b = a[keep], b[keep]
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else -1.0


def refine(
    ref: np.ndarray,
    mov: np.ndarray,
    shift: np.ndarray | tuple[int, int] = (0, 0),
    ref_mask: np.ndarray | None = None,
    mov_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Subpixel shift: Lucas-Kanade refinement on the overlap at the integer peak.

    Gauss-Newton on ``mov(u) = g * ref(u + d) + o + ramp(u)`` (gain, offset and a
    linear ramp absorb intensity differences such as uneven illumination) over
    the pixels both images cover, both smoothed by sigma 1 px against noise.
    Unlike an FFT peak this has no apodisation window, so it stays accurate on
    the narrow strips of tile overlaps. Falls back to the integer shift when
    it does not converge within 1.5 px. Returns (dy, dx) px in :func:`match`'s
    convention, starting from the integer ``shift``.
    """
    shift = np.asarray(shift, dtype=int)
    h, w = ref.shape
    dy, dx = int(shift[0]), int(shift[1])
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    if y1 - y0 < 6 or x1 - x0 < 6:
        return shift.astype(float)
    b = ndimage.gaussian_filter(mov.astype(np.float64), 1.0)[y0:y1, x0:x1]
    a_full = ndimage.gaussian_filter(ref.astype(np.float64), 1.0)
    keep = np.ones(b.shape, bool)
    if ref_mask is not None:
        keep &= ref_mask[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    if mov_mask is not None:
        keep &= mov_mask[y0:y1, x0:x1]
    keep[:2] = keep[-2:] = False
    keep[:, :2] = keep[:, -2:] = False
    if keep.sum() < 32:
        return shift.astype(float)
    # only the part of ref that can be sampled (plus a margin for the spline)
    ry0, ry1 = max(0, y0 + dy - 4), min(h, y1 + dy + 4)
    rx0, rx1 = max(0, x0 + dx - 4), min(w, x1 + dx + 4)
    coeffs = ndimage.spline_filter(a_full[ry0:ry1, rx0:rx1], order=3)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    ramp_y = (yy - yy.mean())[keep] / max(y1 - y0, 1)
    ramp_x = (xx - xx.mean())[keep] / max(x1 - x0, 1)
    d = np.zeros(2)
    for _ in range(6):
        cy, cx = yy + dy + d[0] - ry0, xx + dx + d[1] - rx0
        a = ndimage.map_coordinates(coeffs, [cy, cx], order=3, mode="nearest", prefilter=False)
        gy, gx = np.gradient(a)
        av, bv, gyv, gxv = a[keep], b[keep], gy[keep], gx[keep]
        # b ≈ g*a + o + ry*y + rx*x + g*(gy*ddy + gx*ddx): solve for
        # (g, o, ry, rx, g*ddy, g*ddx); the ramps absorb uneven illumination
        design = np.stack([av, np.ones_like(av), ramp_y, ramp_x, gyv, gxv], axis=1)
        sol, *_ = np.linalg.lstsq(design, bv, rcond=None)
        g = sol[0] if abs(sol[0]) > 1e-9 else 1e-9
        step = sol[4:] / g
        d = d + step
        if np.any(np.abs(d) > 1.5):
            return shift.astype(float)
        if np.hypot(*step) < 1e-3:
            break
    return shift + d


def _refine(cps: np.ndarray, shift: np.ndarray, upsample: int) -> np.ndarray:
    """Upsampled-DFT refinement of an integer peak (Guizar-Sicairos 2008)."""
    region = int(np.ceil(upsample * 1.5))
    dftshift = np.fix(region / 2.0)
    offsets = dftshift - shift * upsample
    up = _upsampled_dft(np.conj(cps), region, upsample, offsets).conj()
    iy, ix = np.unravel_index(int(np.argmax(np.abs(up))), up.shape)
    return shift + (np.array([iy, ix], dtype=float) - dftshift) / upsample


def _upsampled_dft(
    data: np.ndarray, region: int, upsample: int, offsets: np.ndarray
) -> np.ndarray:
    """Inverse DFT of ``data`` on a ``region``² grid upsampled by ``upsample``."""
    out = data
    for n_items, offset in list(zip(data.shape, offsets, strict=True))[::-1]:
        kernel = (np.arange(region) - offset)[:, None] * np.fft.fftfreq(n_items, upsample)
        out = np.tensordot(np.exp(-2j * np.pi * kernel), out, axes=(1, -1))
    return out
