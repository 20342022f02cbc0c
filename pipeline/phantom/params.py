"""Parameters of the synthetic microscope (section ``[phantom]`` of ``cxgraph.toml``).

Every length is in nanometres (nm) unless the field name ends in ``_px``
(pixels of the section image, 1 px = one y/x voxel) or ``_vx`` (voxels).
Arrays everywhere in this package are ordered (z, y, x).
"""

from __future__ import annotations

import dataclasses

from cxgraph.config import register_section
from cxgraph.errors import ConfigError
from cxgraph.params import Params


@dataclasses.dataclass(frozen=True)
class PhantomParams(Params):
    """What the phantom renders and how the simulated microscope images it."""

    seed: int = 0
    shape: tuple[int, int, int] = (64, 512, 512)  # volume, voxels (z, y, x)
    voxel_size: tuple[float, float, float] = (40.0, 8.0, 8.0)  # nm (z, y, x)
    faults: tuple[str, ...] = ()  # fault SPECs, see pipeline/phantom/faults.py

    # --- neuropil (volume fractions are targets for the skeleton growth) ---
    dendrite_fraction: float = 0.25  # volume fraction grown as dendrite tubes
    axon_fraction: float = 0.5  # volume fraction grown as axon tubes
    dendrite_radius_nm: tuple[float, float] = (300.0, 650.0)  # shaft radius range
    axon_radius_nm: tuple[float, float] = (55.0, 150.0)  # shaft radius range
    bouton_radius_nm: tuple[float, float] = (230.0, 380.0)  # en-passant bouton radius
    bouton_spacing_nm: float = 3000.0  # mean distance between boutons along an axon
    spine_rate_per_um: float = 0.6  # dendritic spines per um of dendrite
    somata: int = -1  # somata whose caps enter the volume; -1 = one per 80 um^3 (rounded)
    soma_radius_nm: tuple[float, float] = (5000.0, 7000.0)
    glia_seed_spacing_nm: float = 450.0  # spacing of glial (filler) Voronoi seeds
    expand_nm: float = 24.0  # how far tubes grow into left-over space before glia fill it
    min_fragment_vx: int = 30  # smaller connected pieces become extracellular space

    # --- synapses ---
    polyadic_fraction: float = 0.25  # sites with more than one postsynaptic partner
    max_posts: int = 4  # partners of one polyadic site
    min_contact_vx: int = 12  # contact voxels needed for a partner
    cleft_radius_nm: float = 170.0  # radius of the synaptic contact disc
    synapse_density_per_um3: float = 1.0  # target for --labels (sampled contact sites)

    # --- EM appearance (darkness 0 = unstained resin, 1 = black) ---
    bright: float = 225.0  # grey value of unstained tissue
    dark: float = 30.0  # grey value of fully stained structure
    blur_sigma_px: tuple[float, float, float] = (0.5, 1.0, 1.0)  # PSF sigma (z, y, x) voxels

    # --- microscope ---
    tile_size: int = 0  # px (square tiles); 0 = automatic (about 2-4 tiles per row)
    tile_overlap: float = 0.10  # target overlap fraction between neighbouring tiles
    placement_error_px: float = 1.5  # sd of each tile's true position from its nominal one
    section_jitter_px: float = 1.0  # sd of independent per-section displacement
    drift_step_px: float = 0.6  # sd of the per-section random-walk step (accumulates)
    illumination: float = 0.15  # depth of the per-tile vignetting (0 = flat)
    gain_sd: float = 0.05  # per-tile gain sd (gain ~ 1)
    offset_sd: float = 4.0  # per-tile offset sd, grey values
    electrons_per_grey: float = 0.6  # shot noise: detected electrons per grey value
    read_noise: float = 3.0  # sd of read noise, grey values

    def __post_init__(self) -> None:
        z, y, x = self.shape
        if min(self.shape) <= 0:
            raise ConfigError(f"phantom.shape: expected positive (z, y, x), got {self.shape}")
        if z < 2 or y < 64 or x < 64:
            raise ConfigError(
                f"phantom.shape: the volume must be at least 2 x 64 x 64 voxels "
                f"(z, y, x), got {self.shape}"
            )
        if min(self.voxel_size) <= 0:
            raise ConfigError(f"phantom.voxel_size: expected positive nm, got {self.voxel_size}")
        if not 0.03 <= self.tile_overlap <= 0.3:
            raise ConfigError(
                f"phantom.tile_overlap: expected a fraction in [0.03, 0.3], got {self.tile_overlap}"
            )
        if self.tile_size and (self.tile_size < 32 or self.tile_size > max(y, x)):
            raise ConfigError(
                f"phantom.tile_size: expected 32..{max(y, x)} px (or 0 = automatic), "
                f"got {self.tile_size}"
            )
        if self.dendrite_fraction + self.axon_fraction > 0.95:
            raise ConfigError(
                "phantom: dendrite_fraction + axon_fraction must leave room for glia "
                f"(<= 0.95), got {self.dendrite_fraction + self.axon_fraction:.2f}"
            )

    @property
    def extent_um(self) -> tuple[float, float, float]:
        """Physical size of the volume in micrometres (z, y, x)."""
        return tuple(n * v / 1000.0 for n, v in zip(self.shape, self.voxel_size, strict=True))

    @property
    def volume_um3(self) -> float:
        ez, ey, ex = self.extent_um
        return ez * ey * ex


def default_phantom_params() -> PhantomParams:
    """The defaults: a cortex-like neuropil at 40 x 8 x 8 nm."""
    return PhantomParams()


register_section("phantom", PhantomParams)
