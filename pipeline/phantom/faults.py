"""Faults by name and place: the SPEC syntax, its validation, and what each fault does.

SPEC syntax (one ``--fault`` per fault, repeatable)::

    KIND[:key=value[,key=value...]]

Values are numbers, half-open voxel ranges ``a:b`` (or a single index ``a``), or
words. Coordinates are voxels of the NOMINAL frame (the frame of gt/labels.zarr),
z = section index. Keys left out are drawn from the seed and written, resolved,
to gt/faults.json. Kinds, their keys (defaults) and effects:

- ``staining-gradient``: toward=x+ (a face x+, x-, y+, y-, z+, z- or a corner such
  as y+x+ or z-y+x-), extent=0.6 (fraction of each named axis over which staining
  falls), strength=0.6. Incomplete osmium penetration: the contrast of every
  stained structure falls linearly to 1-strength at the face or corner.
- ``low-contrast``: z=a:b, y=a:b, x=a:b (a random third of the volume),
  strength=0.6. Grey values in the box are pulled to their mean by 1-strength.
- ``missing-section``: z=a or z=a:b (random). The sections are lost: status
  "missing" in the manifest, no tiles (labels/em ground truth still has them).
- ``damaged-section``: z=a (random), type=fold|crack (fold), width=16 (px),
  angle=degrees (random), strength=0.6. A fold hides a band of tissue under a dark
  double layer; a crack pulls the tissue apart around bare resin. The manifest
  still says "ok" (the microscope does not know).
- ``tile-misplacement``: z=a or a:b (random), row=, col= (random), shift=25 (px),
  angle=degrees (random). That tile's true position is off its nominal one by
  shift px (on top of the usual small placement error).
- ``alignment-fault``: z=a:b (three sections mid-stack), shift=30 (px),
  angle=degrees (random). The band's sections jump by shift on top of the drift.
- ``noise-burst``: z=a:b (one random section), y=a:b, x=a:b (whole section),
  strength=0.7. The read-noise sd rises by 40*strength grey values there.
- ``fewer-synapses``: z=a:b, y=a:b, x=a:b (a random third of the volume),
  strength=0.5. Not an imaging fault but biology: that fraction of the synaptic sites
  in the box are not made, the images are rendered as everywhere else (the control
  for "is the difference real?").

Examples: ``staining-gradient:toward=y+x+,strength=0.7``, ``missing-section:z=17``,
``low-contrast:z=0:8,y=0:128,x=256:512,strength=0.5``,
``damaged-section:z=9,type=crack,width=12``, ``alignment-fault:z=20:23,shift=40``.

faults.json holds, for each fault, ``kind``, ``spec`` (as given), ``strength`` and
``region`` (``z``/``y``/``x`` half-open voxel ranges of the nominal frame, plus
kind-specific keys such as the fold line or the tile's row and column).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from cxgraph.errors import ConfigError

KINDS: dict[str, set[str]] = {
    "staining-gradient": {"toward", "extent", "strength"},
    "low-contrast": {"z", "y", "x", "strength"},
    "missing-section": {"z"},
    "damaged-section": {"z", "type", "width", "angle", "strength"},
    "tile-misplacement": {"z", "row", "col", "shift", "angle"},
    "alignment-fault": {"z", "shift", "angle"},
    "noise-burst": {"z", "y", "x", "strength"},
    "fewer-synapses": {"z", "y", "x", "strength"},
}


@dataclasses.dataclass(frozen=True)
class Fault:
    """One resolved fault: every place and strength concrete (nominal voxels, z, y, x)."""

    kind: str
    spec: str
    strength: float
    region: dict[str, Any]

    def z_range(self) -> tuple[int, int]:
        z0, z1 = self.region["z"]
        return int(z0), int(z1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec": self.spec, "strength": self.strength,
                "region": self.region}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``KIND:key=value,...`` into the kind and its raw key/value strings.

    >>> parse_spec("missing-section:z=17")
    ('missing-section', {'z': '17'})
    """
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ConfigError(
            f"fault {spec!r}: unknown kind {kind!r}; expected one of {sorted(KINDS)}"
        )
    args: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or not value.strip():
            raise ConfigError(f"fault {spec!r}: expected key=value, got {item!r}")
        if key not in KINDS[kind]:
            raise ConfigError(
                f"fault {spec!r}: unknown key {key!r} for {kind}; expected some of "
                f"{sorted(KINDS[kind])}"
            )
        args[key] = value.strip()
    return kind, args


def _range(spec: str, key: str, text: str | None, size: int, default: tuple[int, int]
           ) -> tuple[int, int]:
    if text is None:
        a, b = default
    else:
        try:
            if ":" in text:
                sa, sb = text.split(":", 1)
                a, b = int(sa), int(sb)
            else:
                a = int(text)
                b = a + 1
        except ValueError:
            raise ConfigError(
                f"fault {spec!r}: {key} expects an index or a range a:b, got {text!r}"
            ) from None
    if not 0 <= a < b <= size:
        raise ConfigError(
            f"fault {spec!r}: {key}={a}:{b} lies outside the volume (0:{size}); "
            "use a larger --shape or a range inside it"
        )
    return a, b


def _number(spec: str, key: str, text: str | None, default: float, lo: float, hi: float
            ) -> float:
    if text is None:
        return default
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"fault {spec!r}: {key} expects a number, got {text!r}") from None
    if not lo <= v <= hi:
        raise ConfigError(f"fault {spec!r}: {key}={v} outside [{lo}, {hi}]")
    return v


def _toward(spec: str, text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    t = text.lower()
    i = 0
    while i < len(t):
        if i + 1 >= len(t) or t[i] not in "zyx" or t[i + 1] not in "+-":
            raise ConfigError(
                f"fault {spec!r}: toward expects a face like x+ or a corner like y+x-, "
                f"got {text!r}"
            )
        out[t[i]] = 1 if t[i + 1] == "+" else -1
        i += 2
    return out


def resolve(specs: tuple[str, ...] | list[str], shape: tuple[int, int, int],
            grid: tuple[int, int], rng: np.random.Generator) -> list[Fault]:
    """Parse and place every fault; raise ConfigError for bad specs or a too small shape.

    ``shape`` is the volume (z, y, x) in voxels; ``grid`` the tile grid (rows, cols).
    """
    Z, Y, X = shape
    faults: list[Fault] = []
    lost: set[int] = set()
    for spec in specs:
        kind, a = parse_spec(spec)
        region: dict[str, Any] = {}
        strength = 1.0
        if kind == "staining-gradient":
            toward = _toward(spec, a.get("toward", "x+"))
            extent = _number(spec, "extent", a.get("extent"), 0.6, 0.05, 1.0)
            strength = _number(spec, "strength", a.get("strength"), 0.6, 0.0, 1.0)
            region = {"z": [0, Z], "y": [0, Y], "x": [0, X], "toward": a.get("toward", "x+"),
                      "sign": toward, "extent": extent}
            for ax, n in zip("zyx", shape, strict=True):
                if ax in toward:
                    w = max(1, int(round(extent * n)))
                    region[ax] = [n - w, n] if toward[ax] > 0 else [0, w]
        elif kind in ("low-contrast", "noise-burst", "fewer-synapses"):
            if kind in ("low-contrast", "fewer-synapses"):
                dz = max(1, Z // 3)
                z0 = int(rng.integers(0, Z - dz + 1))
                y0 = int(rng.integers(0, Y - Y // 3 + 1))
                x0 = int(rng.integers(0, X - X // 3 + 1))
                dflt = {"z": (z0, z0 + dz), "y": (y0, y0 + Y // 3), "x": (x0, x0 + X // 3)}
            else:
                z0 = int(rng.integers(0, Z))
                dflt = {"z": (z0, z0 + 1), "y": (0, Y), "x": (0, X)}
            for ax, n in zip("zyx", shape, strict=True):
                region[ax] = list(_range(spec, ax, a.get(ax), n, dflt[ax]))
            strength = _number(spec, "strength", a.get("strength"),
                               {"noise-burst": 0.7, "fewer-synapses": 0.5}.get(kind, 0.6),
                               0.0, 1.0)
        elif kind in ("missing-section", "damaged-section", "tile-misplacement"):
            if Z < 3:
                raise ConfigError(f"fault {spec!r}: needs at least 3 sections, shape has {Z}")
            z0 = int(rng.integers(1, Z - 1))
            region["z"] = list(_range(spec, "z", a.get("z"), Z, (z0, z0 + 1)))
            if kind == "damaged-section":
                dtype = a.get("type", "fold").lower()
                if dtype not in ("fold", "crack"):
                    raise ConfigError(f"fault {spec!r}: type expects fold or crack, got {dtype!r}")
                width = _number(spec, "width", a.get("width"), 16.0, 2.0, min(Y, X) / 4)
                angle = _number(spec, "angle", a.get("angle"), float(rng.uniform(0, 180)),
                                -360, 360)
                strength = _number(spec, "strength", a.get("strength"), 0.6, 0.0, 1.0)
                th = math.radians(angle)
                region.update({
                    "type": dtype, "width_px": width, "angle_deg": angle,
                    # the damage line passes through this point (nominal px) with this normal
                    "point_yx": [float(rng.uniform(0.3, 0.7) * Y),
                                 float(rng.uniform(0.3, 0.7) * X)],
                    "normal_yx": [math.sin(th), math.cos(th)],
                    "y": [0, Y], "x": [0, X],
                })
            elif kind == "tile-misplacement":
                rows, cols = grid
                row = int(_number(spec, "row", a.get("row"), float(rng.integers(0, rows)), 0,
                                  rows - 1))
                col = int(_number(spec, "col", a.get("col"), float(rng.integers(0, cols)), 0,
                                  cols - 1))
                shift = _number(spec, "shift", a.get("shift"), 25.0, 0.0, 500.0)
                th = math.radians(_number(spec, "angle", a.get("angle"),
                                          float(rng.uniform(0, 360)), -360, 360))
                region.update({"row": row, "col": col,
                               "dy": shift * math.sin(th), "dx": shift * math.cos(th)})
                strength = shift
            else:
                lost.update(range(*region["z"]))
        elif kind == "alignment-fault":
            if Z < 4:
                raise ConfigError(f"fault {spec!r}: needs at least 4 sections, shape has {Z}")
            z0 = max(1, Z // 2 - 1)
            region["z"] = list(_range(spec, "z", a.get("z"), Z, (z0, min(Z, z0 + 3))))
            shift = _number(spec, "shift", a.get("shift"), 30.0, 0.0, 500.0)
            th = math.radians(_number(spec, "angle", a.get("angle"), float(rng.uniform(0, 360)),
                                      -360, 360))
            region.update({"dy": shift * math.sin(th), "dx": shift * math.cos(th)})
            strength = shift
        faults.append(Fault(kind=kind, spec=spec, strength=float(strength), region=region))
    if len(lost) >= Z:
        raise ConfigError(f"missing-section faults remove all {Z} sections; keep at least one")
    return faults


def staining_factor(faults: list[Fault], shape: tuple[int, int, int],
                    origin: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray | float:
    """Stain multiplier of the darkness, 1 = fully stained, 1 - strength at the face.

    Broadcastable to an array of ``shape`` (z, y, x) whose element [0, 0, 0] sits at
    nominal voxel ``origin``; 1.0 when there is no staining fault.
    """
    out: np.ndarray | float = 1.0
    for f in faults:
        if f.kind != "staining-gradient":
            continue
        ramp: np.ndarray | float = 1.0
        for i, ax in enumerate("zyx"):
            sign = f.region["sign"].get(ax)
            if sign is None:
                continue
            lo, hi = f.region[ax]
            c = np.arange(shape[i], dtype=np.float32) + origin[i] + 0.5
            w = float(hi - lo)
            r = (c - lo) / w if sign > 0 else (hi - c) / w
            bshape = [1, 1, 1]
            bshape[i] = shape[i]
            ramp = np.minimum(ramp, np.clip(r, 0.0, 1.0).reshape(bshape))
        out = out * (1.0 - f.strength * np.asarray(ramp, dtype=np.float32))
    return out
