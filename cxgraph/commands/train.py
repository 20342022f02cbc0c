"""``cxgraph train segment``: train (or fine-tune) the affinity network and record it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

train_app = typer.Typer(help="Train the pipeline's networks.", no_args_is_help=True)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


@train_app.command("segment")
def segment(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace whose "
                                            "provenance records the model (created if missing); "
                                            "training volumes are cached under it.")],
    out: Annotated[Path, typer.Option(help="Weights to write (.pt; a .json record beside).")]
    = Path("affinities-unet.pt"),
    seeds: Annotated[str, typer.Option(help="Phantom seeds of the training volumes.")]
    = "101,102,103,104",
    val_seed: Annotated[int, typer.Option(help="Phantom seed of the validation volume.")] = 109,
    shape: Annotated[str, typer.Option(help="Training volume z,y,x in voxels.")] = "24,320,320",
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of crops, augmentation and weights.")] = 0,
    raw: Annotated[Path | None, typer.Option(help="Your own EM volume (zarr/npy/tiff) to "
                                             "fine-tune on, with --labels.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Its labels (same shape).")] = None,
    init: Annotated[Path | None, typer.Option(help="Start from these weights (fine-tune).")]
    = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 2e-3,
    uneven_staining: Annotated[bool, typer.Option(help="Augment with staining gradients "
                                                  "(lighter, flatter regions at the same "
                                                  "noise).")] = False,
) -> None:
    """Train the 3D U-Net on phantom volumes run through L1/L2 (or fine-tune it on yours)."""
    from cxgraph.errors import ConfigError
    from cxgraph.provenance import register_model
    from cxgraph.workspace import Workspace
    from pipeline.segment.train import TrainConfig, train
    from pipeline.segment.training_data import phantom_volume, user_volume

    ws = Workspace.create(workspace)
    zyx = tuple(_ints(shape))
    if len(zyx) != 3:
        raise ConfigError(f"--shape {shape!r}: expected z,y,x")
    cache = ws.root / "training"
    if (raw is None) != (labels is None):
        raise ConfigError("--raw and --labels come together")
    if raw is not None:
        vol = user_volume(raw, labels)  # type: ignore[arg-type]
        half = vol.raw.shape[0] // 2 or 1
        from pipeline.segment.training_data import Volume

        volumes = [Volume(vol.name, vol.raw[half:], vol.labels[half:])]
        validation = Volume(vol.name + "-val", vol.raw[:half], vol.labels[:half])
    else:
        volumes = [phantom_volume(cache, s, zyx) for s in _ints(seeds)]  # type: ignore[arg-type]
        validation = phantom_volume(cache, val_seed, zyx)  # type: ignore[arg-type]
    cfg = TrainConfig(seed=seed, steps=steps, lr=lr, uneven_staining=uneven_staining)
    record = train(volumes, validation, out, cfg, init=init)
    model_id = register_model(ws, "affinities-unet", out.with_suffix(".pt"),
                              record["architecture"], {**record["config"],
                                                       "training": record["training"]},
                              trained_by=None, metrics={"curve": record["curve"],
                                                        "data": record["data"]})
    typer.echo(json.dumps({"model_id": model_id, "weights": str(out.with_suffix(".pt")),
                           "train_seconds": record["train_seconds"],
                           "final": record["curve"][-1]}))


@train_app.command("synapses")
def synapses(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace whose "
                                            "provenance records the model (created if missing); "
                                            "training volumes are cached under it.")],
    out: Annotated[Path, typer.Option(help="Weights to write (.pt; a .json record beside).")]
    = Path("synapses-unet.pt"),
    seeds: Annotated[str, typer.Option(help="Phantom seeds of the training volumes.")]
    = "201,202,203,204",
    val_seed: Annotated[int, typer.Option(help="Phantom seed of the validation volume.")] = 209,
    shape: Annotated[str, typer.Option(help="Training volume z,y,x in voxels.")] = "24,320,320",
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of crops, augmentation and weights.")] = 0,
    init: Annotated[Path | None, typer.Option(help="Start from these weights (fine-tune).")]
    = None,
    fly_seeds: Annotated[str, typer.Option(help="Seeds of further training volumes with "
                                           "insect morphology (the fly-neuropil preset).")]
    = "",
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 2e-3,
) -> None:
    """Train the synapse network (post mask + direction to the partner) on phantom volumes
    with dense boutons, run through L1/L2."""
    from cxgraph.errors import ConfigError
    from cxgraph.provenance import register_model
    from cxgraph.workspace import Workspace
    from pipeline.segment.train import TrainConfig, train
    from pipeline.segment.training_data import phantom_volume
    from pipeline.synapses.train import SYNAPSES, TRAINING_PRESET

    ws = Workspace.create(workspace)
    zyx = tuple(_ints(shape))
    if len(zyx) != 3:
        raise ConfigError(f"--shape {shape!r}: expected z,y,x")
    cache = ws.root / "training"
    volumes = [phantom_volume(cache, s, zyx, preset=TRAINING_PRESET)  # type: ignore[arg-type]
               for s in _ints(seeds)]
    volumes += [phantom_volume(cache, s, zyx, morphology="fly-neuropil")  # type: ignore[arg-type]
                for s in _ints(fly_seeds)]
    validation = phantom_volume(cache, val_seed, zyx, preset=TRAINING_PRESET)  # type: ignore[arg-type]
    record = train(volumes, validation, out, TrainConfig(seed=seed, steps=steps, lr=lr),
                   init=init, task=SYNAPSES)
    model_id = register_model(ws, "synapses-unet", out.with_suffix(".pt"),
                              record["architecture"], {**record["config"],
                                                       "training": record["training"]},
                              trained_by=None, metrics={"curve": record["curve"],
                                                        "data": record["data"]})
    typer.echo(json.dumps({"model_id": model_id, "weights": str(out.with_suffix(".pt")),
                           "train_seconds": record["train_seconds"],
                           "final": record["curve"][-1]}))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
