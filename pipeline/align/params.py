"""Parameters of the L2 stages: ``[stitch]`` (tiles within a section) and ``[align]``
(sections to each other, warping). Each holds only what its stage reads."""

from __future__ import annotations

import dataclasses

from cxgraph.params import Params


@dataclasses.dataclass(frozen=True)
class StitchParams(Params):
    """L2 stitch: tile positions within each section. Distances in px of the input tiles."""

    min_peak_ratio: float = 1.6  # first/second overlap-NCC peak (SOFIMA keeps >= 1.6)
    tile_search_px: float = 6.0  # first search radius for neighbour tiles
    tile_max_shift_px: float = 32.0  # wider search when the first fails (misplaced tiles)
    tile_min_ncc: float = 0.7  # overlap NCC below this rejects a tile pair
    min_overlap_px: int = 8  # nominal overlaps narrower than this are not matched
    tile_max_residual_px: float = 2.0  # edges whose solved residual exceeds this are dropped
    blend_px: int = 16  # tile edge ramp width of the blended section mosaic (raw)
    interpolation_order: int = 1  # 1 bilinear, 3 cubic spline


@dataclasses.dataclass(frozen=True)
class AlignParams(Params):
    """L2 align. Distances in px of the input tiles (y, x); thresholds as in SOFIMA."""

    # --- match acceptance (sections and patches) ---
    min_peak_ratio: float = 1.6  # first/second correlation peak (SOFIMA keeps >= 1.6)
    min_sharpness: float = 5.0  # peak / mean |correlation| in the search window
    min_ncc: float = 0.2  # Pearson correlation over the overlap at the peak
    whiten: float = 0.9  # spectrum normalisation exponent (1 = phase correlation)
    upsample: int = 20  # subpixel precision 1/upsample px

    # --- section registration ---
    neighbours: int = 3  # previous usable sections tried, nearest first, until one matches
    section_max_shift_px: float = 96.0  # max displacement difference between matched sections
    section_match_px: int = 512  # side of the central square used for whole-section matching
    pair_patch_px: int = 256  # patch side for refining a section pair (0 = whole-section only)
    pair_patch_max_shift_px: float = 6.0  # search radius of those patches around the coarse shift
    pair_patch_stride_px: int = 128  # spacing of those patches (overlapping: more vectors)
    pair_trim_fraction: float = 0.25  # drop this fraction of patch vectors furthest from
    # their median before averaging (outliers: folds, dirt, damaged patches)
    # --- texture: sections are matched on band-passed cytoplasm, membranes masked ---
    # (neurites run obliquely, so membranes and organelles move between sections
    #  with the tissue; fine granular texture does not: measured, see BENCHMARKS.md)
    texture: bool = True  # False = match the stitched images as they are
    texture_band_px: tuple[float, float] = (1.0, 2.5)  # difference-of-Gaussians sigmas
    texture_dark_fraction: float = 0.3  # darker than median - f * (median - p5): structure
    texture_dilate_px: int = 2  # grow the structure mask by this much before masking
    pair_min_ncc: float = 0.0  # NCC a section pair needs; failed pairs carry -1. Texture NCC is
    # low (median patch ~0.2 between neighbours, whole section 0.02-0.1 across a missing one):
    # patch agreement and the bridge's peak ratio are what reject bad pairs
    bridge_min_peak_ratio: float = 2.0  # a whole-section texture match (patches failed) needs this
    pair_sd_floor_px: float = 0.05  # floor of a pair's standard error (its LS weight is 1/se)
    pair_sd_default_px: float = 0.5  # standard error assumed for a pair without one (weight 1)
    min_patch_fraction: float = 0.3  # fraction of patches that must match for a pair to count
    section_max_residual_px: float = 2.0  # pair matches with a larger solved residual are dropped
    smoothness_weight: float = 1e-3  # weak tie d_z ≈ d_(z-1): bridges sections with no match
    fault_jump_px: float = 8.0  # |d_z - d_(z-1)| above this flags an alignment fault

    # --- local (block-matching) refinement ---
    local_fields: bool = True  # block-matching displacement fields on top of the translations
    patch_px: int = 128  # side of a block-matching patch
    patch_stride_px: int = 128  # spacing of the mesh nodes
    patch_max_shift_px: float = 8.0  # max local residual displacement
    patch_min_peak_ratio: float = 1.2  # block-matching vectors: looser than whole images,
    patch_min_sharpness: float = 2.0  # the median over patches and the local-median
    patch_min_ncc: float = 0.1  # filter reject what slips through
    max_median_deviation_px: float = 2.0  # vectors further from the local median are dropped
    mesh_stiffness: float = 1.0  # spring pulling each node towards the rigid solution
    field_smoothing: float = 1.0  # Gaussian sigma (in mesh nodes) of the in-plane smoothing

    # --- rendering (aligned volume, from the tiles) ---
    blend_px: int = 16  # tile edge ramp width for blended mosaics
    interpolation_order: int = 1  # 1 bilinear, 3 cubic spline
