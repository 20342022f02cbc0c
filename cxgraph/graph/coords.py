"""The one place where (z, y, x) becomes (x, y, z) and back.

cxgraph arrays and tables are (z, y, x) voxels everywhere. Neo4j points (and
neuPrint's ``location``) are (x, y, z). Build and read points only here.
"""

from __future__ import annotations

from collections.abc import Sequence

import neo4j.spatial
import numpy as np
import polars as pl

# Cypher fragment that builds a point from a row carrying named z, y, x keys
# (names, not positions, so the order cannot be confused).
POINT_FROM_ROW = "point({{x: toFloat({p}x), y: toFloat({p}y), z: toFloat({p}z)}})"


def point_expr(prefix: str) -> str:
    """Cypher for a point from ``<prefix>z``, ``<prefix>y``, ``<prefix>x``, e.g.
    ``point_expr("row.pre_")`` -> ``point({x: toFloat(row.pre_x), ...})``."""
    return POINT_FROM_ROW.format(p=prefix)


def point_from_zyx(z: float, y: float, x: float) -> neo4j.spatial.CartesianPoint:
    """A Neo4j cartesian-3d point (x, y, z) from (z, y, x) voxels."""
    return neo4j.spatial.CartesianPoint((float(x), float(y), float(z)))


def zyx_from_point(p: Sequence[float]) -> tuple[float, float, float]:
    """(z, y, x) from a Neo4j point or its ``[x, y, z]`` list."""
    x, y, z = (float(v) for v in list(p)[:3])
    return z, y, x


def point_csv_expr(prefix: str) -> pl.Expr:
    """neo4j-admin import's point literal ``{x:..,y:..,z:..}`` built from the columns
    ``<prefix>z``, ``<prefix>y``, ``<prefix>x`` (voxels) of a polars frame."""
    return pl.concat_str([
        pl.lit("{x:"), pl.col(f"{prefix}x").cast(pl.Utf8), pl.lit(",y:"),
        pl.col(f"{prefix}y").cast(pl.Utf8), pl.lit(",z:"), pl.col(f"{prefix}z").cast(pl.Utf8),
        pl.lit("}")])


def csv_points(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> list[str]:
    """neo4j-admin import's point literal ``{x:.., y:.., z:..}`` for (n,) arrays in voxels."""
    return [f"{{x:{a:g},y:{b:g},z:{c:g}}}" for a, b, c in zip(x.tolist(), y.tolist(),
                                                              z.tolist(), strict=True)]


def box_zyx(begin: Sequence[int], end: Sequence[int]) -> list[int]:
    """A box property ``[z0, y0, x0, z1, y1, x1]`` (voxels, end exclusive)."""
    return [int(v) for v in (*begin, *end)]
