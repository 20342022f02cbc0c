"""Parameters of the L1 ingest stage (section ``[ingest]``)."""

from __future__ import annotations

import dataclasses

from cxgraph.errors import ConfigError
from cxgraph.params import Params


@dataclasses.dataclass(frozen=True)
class IngestParams(Params):
    """L1 ingest. Grey values refer to the input dtype's scale (integer tiles) or to 0..255
    over the grey range of float tiles (see ``pipeline.ingest.tiles.grey_range``)."""

    on_bad_tile: str = "mark"  # mark (record, zero-fill, continue) | stop (raise)
    blank_std: float = 2.0  # grey sd below which a tile is blank
    saturated_fraction_flag: float = 0.02  # fraction at dtype min/max that flags "saturated"
    saturated_fraction_reject: float = 0.5  # above this a saturated tile is not used
    flatfield: bool = True  # divide by the estimated illumination profile
    flatfield_sigma_px: float = 8.0  # Gaussian smoothing of the profile
    flatfield_max_tiles: int = 256  # tiles sampled for the profile
    normalize: str = "overlap"  # overlap (gain/offset matched in overlaps) | none
    min_overlap_px: int = 8  # nominal overlaps narrower than this are not used for gains
    target_low: float = 20.0  # output grey of the volume's 0.5th percentile
    target_high: float = 235.0  # output grey of the volume's 99.5th percentile

    def __post_init__(self) -> None:
        if self.on_bad_tile not in ("mark", "stop"):
            raise ConfigError(f"ingest.on_bad_tile: expected 'mark' or 'stop', got "
                              f"{self.on_bad_tile!r}")
        if self.normalize not in ("overlap", "none"):
            raise ConfigError(f"ingest.normalize: expected 'overlap' or 'none', got "
                              f"{self.normalize!r}")
        # ranges: a value outside them would be written to cxgraph.toml and fail every run
        checks = [
            ("blank_std", self.blank_std >= 0, "a grey sd >= 0"),
            ("saturated_fraction_flag", 0 <= self.saturated_fraction_flag <= 1,
             "a fraction in 0..1"),
            ("saturated_fraction_reject",
             self.saturated_fraction_flag <= self.saturated_fraction_reject <= 1,
             "a fraction in saturated_fraction_flag..1"),
            ("flatfield_sigma_px", self.flatfield_sigma_px > 0, "a positive px size"),
            ("flatfield_max_tiles", self.flatfield_max_tiles >= 1, "at least 1 tile"),
            ("min_overlap_px", self.min_overlap_px >= 0, "a px count >= 0"),
            ("target_low", 0 <= self.target_low < self.target_high <= 255,
             "0 <= target_low < target_high <= 255"),
        ]
        for name, ok, expected in checks:
            if not ok or getattr(self, name) != getattr(self, name):  # NaN fails too
                raise ConfigError(f"ingest.{name}: expected {expected}, got "
                                  f"{getattr(self, name)!r}")
