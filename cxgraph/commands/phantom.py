"""``cxgraph phantom``: render a synthetic EM volume, its tiles and its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxgraph.errors import ConfigError
from cxgraph.params import _coerce
from pipeline.phantom.faults import KINDS
from pipeline.phantom.params import PRESETS, PhantomParams

_FAULT_HELP = (
    "A fault, repeatable: KIND[:key=value,...]; ranges a:b are half-open voxels of the "
    "nominal frame. Kinds: " + ", ".join(sorted(KINDS)) + ". E.g. "
    "staining-gradient:toward=y+x+,strength=0.7 | low-contrast:z=0:8,y=0:128,x=0:128,"
    "strength=0.5 | missing-section:z=17 | damaged-section:z=9,type=crack,width=12 | "
    "tile-misplacement:z=4,row=0,col=1,shift=30 | alignment-fault:z=20:23,shift=40 | "
    "noise-burst:z=5,strength=0.8. See pipeline/phantom/faults.py for every key."
)


def _triple(text: str, what: str, kind: type) -> tuple:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        if len(parts) != 3:
            raise ValueError
        return tuple(kind(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{what}: expected three comma-separated numbers Z,Y,X, got {text!r}"
                          ) from None


def register(app: typer.Typer) -> None:
    @app.command("phantom")
    def phantom(
        out: Annotated[Path, typer.Option("--out", help="Output directory (tiles/, gt/, "
                                          "manifest).")],
        seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same "
                                          "volume.")] = 0,
        shape: Annotated[str | None, typer.Option("--shape", help="Volume Z,Y,X in voxels (not "
                                                  "needed with --labels).")] = None,
        voxel_size: Annotated[str, typer.Option("--voxel-size", help="Voxel size Z,Y,X in "
                                                "nm.")] = "40,8,8",
        tile_size: Annotated[int, typer.Option("--tile-size", help="Tile edge in px (0 = about "
                                               "three tiles per row).")] = 0,
        fault: Annotated[list[str] | None, typer.Option("--fault", help=_FAULT_HELP)] = None,
        labels: Annotated[Path | None, typer.Option(
            "--labels", help="Render EM from this label volume (.npy, .tif/.tiff, .zarr) "
            "instead of generated neuropil.")] = None,
        preview: Annotated[bool, typer.Option("--preview", help="Write PNGs into "
                                              "DIR/preview/.")] = False,
        preset: Annotated[str, typer.Option(
            "--preset", help="Microscope preset: " + ", ".join(sorted(PRESETS)) + " (tem = a "
            "good TEM dose; low-dose = noisy and harder). --set overrides its values.")] = "tem",
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Any other phantom parameter, key=value (e.g. "
            "drift_step_px=1.0).")] = None,
    ) -> None:
        """Render a synthetic EM volume (neuropil, synapses, organelles), cut it into
        overlapping tiles as a microscope would, and write the ground truth of every layer.

        Writes DIR/manifest.json and DIR/tiles/ (the microscope's view, nominal tile
        positions) and DIR/gt/ (labels.zarr, em.zarr, synapses.parquet, tile_offsets.parquet,
        section_offsets.parquet, faults.json) plus DIR/phantom.json (parameters, seed).
        """
        from pipeline.phantom import render_phantom
        from pipeline.phantom.io import load_labels

        if preset not in PRESETS:
            raise ConfigError(f"--preset {preset!r}: expected one of {sorted(PRESETS)}")
        values: dict = {**PRESETS[preset], "seed": seed,
                        "voxel_size": _triple(voxel_size, "--voxel-size", float),
                        "tile_size": tile_size, "faults": tuple(fault or ())}
        lab = None
        if labels is not None:
            lab = load_labels(labels)
            if shape and _triple(shape, "--shape", int) != lab.shape:
                raise ConfigError(f"--shape {shape} differs from the --labels volume {lab.shape}")
            values["shape"] = tuple(lab.shape)
        elif shape:
            values["shape"] = _triple(shape, "--shape", int)
        else:
            raise ConfigError("--shape Z,Y,X is required unless --labels is given")
        hints = PhantomParams.__annotations__
        for item in set_ or []:
            key, eq, val = item.partition("=")
            key = key.strip().removeprefix("phantom.")
            if not eq or key not in hints:
                raise ConfigError(f"--set {item!r}: expected key=value with key one of "
                                  f"{sorted(hints)}")
            import typing

            values[key] = _coerce(val, typing.get_type_hints(PhantomParams)[key], f"--set {key}")
        params = PhantomParams.from_dict(values, where="phantom")
        res = render_phantom(out, params, labels=lab, preview=preview)
        typer.echo(f"phantom written to {res.out_dir}: {res.shape} voxels, {res.n_bodies} bodies, "
                   f"{res.n_synapses} synapses, {res.n_tiles} tiles, "
                   f"{res.timings_s['total']:.1f} s")
