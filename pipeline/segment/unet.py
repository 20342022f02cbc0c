"""A small anisotropic 3D U-Net that predicts affinities (torch).

Shaped for serial-section EM at ~40 x 8 x 8 nm (z, y, x): the full-resolution level
convolves only in y/x (a voxel is 5x longer in z), the next mixes in-plane and 3D,
the deeper ones are 3D; the first two poolings are in-plane only.
"Same" padding; blocks are predicted with a read margin and cropped, so the
margin hides the border effects (see ``affinities_stage.py``).

Input (N, 1, Z, Y, X) float32, standardised grey values (mean 0, sd 1). Output
(N, C, Z, Y, X) logits, one channel per affinity offset (``AFFINITY_OFFSETS``):
channel k is the affinity between voxel p and p + offset[k] (offsets are
negative: each voxel's link to a neighbour behind it). The first three are the
nearest neighbours (z, y, x) that watershed and agglomeration use; the others
are long-range auxiliary targets that teach the net about shape beyond one voxel
(as in Lee et al. 2017).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from cxgraph.provenance import device_name

# (dz, dy, dx) in voxels; nearest neighbours first.
AFFINITY_OFFSETS: tuple[tuple[int, int, int], ...] = (
    (-1, 0, 0), (0, -1, 0), (0, 0, -1),
    (-2, 0, 0), (0, -3, 0), (0, 0, -3), (0, -9, 0), (0, 0, -9),
)


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Architecture; stored with the weights so a model file is self-describing."""

    features: tuple[int, ...] = (8, 16, 32, 64)  # channels per level
    pools: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (1, 2, 2), (2, 2, 2))  # down factors
    out_channels: int = len(AFFINITY_OFFSETS)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "pools": [list(p) for p in self.pools],
                "out_channels": self.out_channels}

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        return cls(tuple(d["features"]), tuple(tuple(p) for p in d["pools"]),
                   int(d["out_channels"]))

    @property
    def divisor(self) -> tuple[int, int, int]:
        """Input sizes must be multiples of this (z, y, x)."""
        out = [1, 1, 1]
        for p in self.pools:
            out = [o * f for o, f in zip(out, p, strict=True)]
        return tuple(out)  # type: ignore[return-value]


def _block(cin: int, cout: int, level: int) -> nn.Sequential:
    """Two convolutions: in-plane (1x3x3) at full resolution, where most voxels are and a
    voxel is 5x longer in z; in-plane then 3D one level down; 3D below that."""
    k1, k2 = {0: ((1, 3, 3), (1, 3, 3)), 1: ((1, 3, 3), (3, 3, 3))}.get(
        level, ((3, 3, 3), (3, 3, 3)))
    return nn.Sequential(
        nn.Conv3d(cin, cout, k1, padding=tuple(s // 2 for s in k1)),
        nn.GroupNorm(min(4, cout), cout), nn.LeakyReLU(0.1, inplace=True),
        nn.Conv3d(cout, cout, k2, padding=tuple(s // 2 for s in k2)),
        nn.GroupNorm(min(4, cout), cout), nn.LeakyReLU(0.1, inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, config: UNetConfig = UNetConfig()):  # noqa: B008 - frozen default
        super().__init__()
        self.config = config
        f = config.features
        self.down = nn.ModuleList()
        cin = 1
        for level, c in enumerate(f):
            self.down.append(_block(cin, c, level))
            cin = c
        self.pool = nn.ModuleList(nn.MaxPool3d(p, p) for p in config.pools)
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(f[i + 1], f[i], p, stride=p) for i, p in enumerate(config.pools))
        self.merge = nn.ModuleList(_block(2 * f[i], f[i], i) for i in range(len(config.pools)))
        self.head = nn.Conv3d(f[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < len(self.pool):
                skips.append(x)
                x = self.pool[level](x)
        for level in reversed(range(len(self.pool))):
            x = self.up[level](x)
            x = self.merge[level](torch.cat([skips[level], x], dim=1))
        return self.head(x)


def device() -> torch.device:
    """CUDA when present (mixed precision there), else the CPU (as provenance records it)."""
    return torch.device(device_name())
