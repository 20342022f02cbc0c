"""Parameters of the synthetic microscope (section ``[phantom]`` of ``cxgraph.toml``).

Every length is in nanometres (nm) unless the field name ends in ``_px``
(pixels of the section image, 1 px = one y/x voxel) or ``_vx`` (voxels).
Arrays everywhere in this package are ordered (z, y, x).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from cxgraph.config import register_section
from cxgraph.errors import ConfigError
from cxgraph.params import Params

log = logging.getLogger(__name__)

# parameters of the first-pass renderer, still found in older workspaces' cxgraph.toml:
# read and ignored (their look is gone); a scalar cleft radius becomes a range
LEGACY_KEYS = ("bright", "dark", "blur_sigma_px", "min_contact_vx")


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
    # multi-partner sites: about 10-20 % of boutons in rodent neocortex and CA1 contact
    # more than one postsynaptic partner (multi-synaptic boutons); 0.3 of sites try, and
    # ~11 % of sites find a second large enough contact (measured, tests/test_phantom_look.py)
    polyadic_fraction: float = 0.3  # sites that take a second partner if one touches enough
    max_posts: int = 2  # partners of one polyadic site
    min_contact_nm2: float = 6000.0  # contact face area (nm^2) needed for a partner
    cleft_radius_nm: tuple[float, float] = (90.0, 170.0)  # radius range of the contact disc
    synapse_density_per_um3: float = 1.0  # target for --labels (sampled contact sites)

    # --- EM appearance: optical density (OD) tau, grey = resin_grey * exp(-tau) ---
    # densities are ODs of a structure seen edge-on through the whole section
    resin_grey: float = 232.0  # grey value of unstained resin
    cytoplasm_od: float = 0.33  # mean OD of cytoplasm
    object_od_sd: float = 0.02  # sd of the per-object OD offset (no per-kind levels)
    ecs_od: float = 0.18  # extracellular space
    texture_od: float = 0.11  # sd of the granular cytoplasm texture
    membrane_nm: float = 7.5  # FWHM of a plasma-membrane shell (3-D)
    membrane_od: float = 0.78  # peak OD of an edge-on plasma membrane (before blur)
    rim_od: float = 0.28  # lighter cytoplasm 10-26 nm beside membranes (the bright rim)
    internal_membrane_od: float = 0.85  # vesicles, ER, mitochondrial membranes
    vesicle_diameter_nm: tuple[float, float] = (35.0, 45.0)
    vesicle_spacing_nm: float = 44.0  # lattice spacing of packed vesicle clouds
    microtubules_per_um2: float = 90.0  # in cross-sections of axons and dendrites
    mito_matrix: float = 0.78  # grey of the matrix relative to cytoplasm
    cristae_spacing_nm: float = 36.0
    cleft_width_nm: float = 20.0
    cleft_od: float = 0.2  # cleft material
    psd_nm: float = 40.0  # PSD thickness along the contact normal
    psd_od: float = 0.28
    z_subsamples: int = 4  # samples through each section's thickness

    # --- optics and detector (nm unless _px) ---
    highlight_knee: float = 40.0  # grey: soft shoulder of the detector above the cytoplasm level
    psf_sigma_nm: float = 3.6  # Gaussian blur of optics and camera together
    rim_sigma_nm: float = 14.0  # width of the defocus fringe's negative lobe
    rim_strength: float = 0.3  # weight of the fringe lobe (0 = none)
    camera_sigma_px: float = 0.45  # scintillator/camera blur (part of psf_sigma_nm's blur),
    #                               also applied to the shot noise
    preset: str = "tem"  # "tem" (a good TEM dose) or "low-dose" (noisy, harder), see PRESETS

    # --- microscope ---
    tile_size: int = 0  # px (square tiles); 0 = automatic (about 2-4 tiles per row)
    tile_overlap: float = 0.10  # target overlap fraction between neighbouring tiles
    placement_error_px: float = 1.5  # sd of each tile's true position from its nominal one
    section_jitter_px: float = 1.0  # sd of independent per-section displacement
    drift_step_px: float = 0.6  # sd of the per-section random-walk step (accumulates)
    illumination: float = 0.15  # depth of the per-tile vignetting (0 = flat)
    gain_sd: float = 0.05  # per-tile gain sd (gain ~ 1)
    offset_sd: float = 4.0  # per-tile offset sd, grey values
    electrons_per_grey: float = 8.0  # shot noise: electrons per grey value per 4 x 4 nm px
    #                                   (scales with pixel area: the same dose per nm^2)
    read_noise: float = 0.5  # sd of read noise, grey values (white, after the camera blur)

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
        if self.preset not in PRESETS:
            raise ConfigError(f"phantom.preset: expected one of {sorted(PRESETS)}, "
                              f"got {self.preset!r}")
        if not 1 <= self.z_subsamples <= 16:
            raise ConfigError(f"phantom.z_subsamples: expected 1..16, got {self.z_subsamples}")
        if self.dendrite_fraction + self.axon_fraction > 0.95:
            raise ConfigError(
                "phantom: dendrite_fraction + axon_fraction must leave room for glia "
                f"(<= 0.95), got {self.dendrite_fraction + self.axon_fraction:.2f}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "") -> PhantomParams:
        """As ``Params.from_dict``; first-pass keys (``LEGACY_KEYS``) are dropped with a
        warning, so a workspace written before the second look still opens."""
        data = dict(data or {})
        old = sorted(k for k in LEGACY_KEYS if k in data)
        for k in old:
            data.pop(k)
        if old:
            log.warning("%s: ignoring first-pass phantom parameter(s) %s (the renderer "
                        "is specified in nm now; see pipeline/phantom/params.py)",
                        where or cls.__name__, old)
        r = data.get("cleft_radius_nm")
        if isinstance(r, int | float):
            data["cleft_radius_nm"] = (float(r), float(r))
        return super().from_dict(data, where)

    @property
    def extent_um(self) -> tuple[float, float, float]:
        """Physical size of the volume in micrometres (z, y, x)."""
        return tuple(n * v / 1000.0 for n, v in zip(self.shape, self.voxel_size, strict=True))

    @property
    def volume_um3(self) -> float:
        ez, ey, ex = self.extent_um
        return ez * ey * ex


# Named microscopes: ``--preset NAME`` sets these fields (``--set`` still overrides them).
# "tem": a well-exposed TEM (noise sd ~3 grey after the camera, as in published ssTEM);
# "low-dose": a fast, noisy acquisition (shot noise ~16 grey, white read noise 3 grey,
# no camera blur), harder for every stage, like the phantom's first look;
# "fly-neuropil": insect neuropil morphology (the default is mouse-cortex-like).
PRESETS: dict[str, dict] = {
    "tem": {"preset": "tem"},
    "low-dose": {"preset": "low-dose", "electrons_per_grey": 0.6, "read_noise": 3.0,
                 "camera_sigma_px": 0.0},
    # insect (fly) neuropil seen by the "tem" microscope: thin neurites (measured on 4 nm
    # sections: 37-41 profiles per um^2, median profile diameter 98-100 nm, half under
    # 100 nm; published fly neuropil: 31 per um^2, 0.10 um, 50 %), small boutons, no
    # spines or somata, polyadic T-bar synapses with up to 4 partners
    "fly-neuropil": {"preset": "fly-neuropil", "dendrite_fraction": 0.35, "axon_fraction": 0.5,
                     "dendrite_radius_nm": (110.0, 280.0), "axon_radius_nm": (24.0, 52.0),
                     "bouton_radius_nm": (110.0, 190.0), "bouton_spacing_nm": 3000.0,
                     "spine_rate_per_um": 0.0, "somata": 0, "glia_seed_spacing_nm": 600.0,
                     "expand_nm": 12.0, "polyadic_fraction": 0.9, "max_posts": 4,
                     "min_contact_nm2": 2500.0, "cleft_radius_nm": (60.0, 120.0)},
}


def preset_params(name: str, **overrides) -> PhantomParams:
    """PhantomParams of a named microscope preset, with ``overrides`` on top.

    >>> preset_params("low-dose", seed=3).electrons_per_grey
    0.6
    """
    if name not in PRESETS:
        raise ConfigError(f"phantom preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return PhantomParams(**{**PRESETS[name], **overrides})


def default_phantom_params() -> PhantomParams:
    """The defaults: a cortex-like neuropil at 40 x 8 x 8 nm."""
    return PhantomParams()


register_section("phantom", PhantomParams)
