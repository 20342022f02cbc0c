"""``cxgraph view``: the workspace in a local neuroglancer session (on 127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cxgraph.commands._common import WorkspaceOpt
from cxgraph.errors import ConfigError
from cxgraph.workspace import Workspace

HOST = "127.0.0.1"


@dataclasses.dataclass
class ViewSession:
    """A running viewer: ``url`` to open, ``viewer`` (neuroglancer.Viewer), the file servers."""

    url: str
    viewer: Any
    servers: list[Any]
    layers: list[Any]

    def state_json(self) -> dict[str, Any]:
        return self.viewer.state.to_json()

    def close(self) -> None:
        import neuroglancer

        for s in self.servers:
            s.stop()
        neuroglancer.stop()


def open_view(ws: Workspace, input_dir: Path | None = None, bodies: list[int] | None = None,
              port: int = 0, state: dict[str, Any] | None = None) -> ViewSession:
    """Serve the workspace's files and start a viewer with every layer there is data for.

    ``state``: a saved viewer state whose position, zoom, layout and selected bodies are
    kept (its layers are rebuilt from this workspace).
    """
    import neuroglancer
    from neuroglancer.static_file_server import StaticFileServer

    from cxgraph import view_state as vsm

    bodies = list(bodies or [])
    servers = [StaticFileServer(str(ws.root), bind_address=HOST, daemon=True)]
    input_url = None
    if input_dir is not None:
        input_dir = Path(input_dir).resolve()
        if input_dir.is_relative_to(ws.root):
            input_url = f"{servers[0].url}/{input_dir.relative_to(ws.root)}"
        else:
            servers.append(StaticFileServer(str(input_dir), bind_address=HOST, daemon=True))
            input_url = servers[-1].url
    layers = vsm.volume_layers(ws, servers[0].url, input_url, input_dir, bodies)
    label = next((la.name for la in layers if la.kind == "segmentation"), None)
    syn = vsm.synapse_layer(ws, input_dir, bodies, label)
    layers += [la for la in (syn, vsm.flag_layer(ws)) if la is not None]
    layers += vsm.heat_layers(ws)
    if not layers:
        raise ConfigError(f"{ws.root} has nothing to show yet: run the pipeline first "
                          f"(`cxgraph run -w {ws.root} --input DIR`)")
    neuroglancer.set_server_bind_address(HOST, bind_port=port)
    viewer = neuroglancer.Viewer()
    dims = neuroglancer.CoordinateSpace(names=["z", "y", "x"], units="nm",
                                        scales=list(vsm.voxel_size(ws)))
    with viewer.txn() as s:
        for la in layers:
            s.layers[la.name] = _layer(neuroglancer, la, dims)
            s.layers[la.name].visible = la.visible
        s.layout = "4panel"
        if state:
            _restore(neuroglancer, s, state)
        extent = vsm.volume_extent_nm(ws)
        if extent and not (state or {}).get("position"):
            # the view's own space (voxels of level 0) to centre it; each layer's space
            # still comes from its files' metadata
            # neuroglancer's panels are named after the first axes: its global order is x, y, z
            vs = vsm.voxel_size(ws)
            s.dimensions = neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm",
                                                        scales=list(vs[::-1]))
            s.position = [e / v / 2 for e, v in zip(extent[::-1], vs[::-1], strict=True)]
            s.cross_section_scale = max(extent[1:]) / vs[2] / 300
            s.projection_scale = max(extent[1:]) * 1.5
    return ViewSession(str(viewer), viewer, servers, layers)


def _layer(ng: Any, la: Any, dims: Any) -> Any:
    spec = la.spec
    if la.kind == "image":
        return ng.ImageLayer(source=spec["source"])
    if la.kind == "segmentation":
        return ng.SegmentationLayer(source=spec["source"],
                                    segments=[int(b) for b in spec["segments"]])
    if la.kind == "heat":
        vol = ng.LocalVolume(spec["data"], dimensions=ng.CoordinateSpace(
            names=["z", "y", "x"], units="nm", scales=spec["scales"]))
        return ng.ImageLayer(source=vol, shader=spec["shader"])
    return ng.LocalAnnotationLayer(
        dims, annotations=spec["annotations"],
        annotation_relationships=spec.get("annotationRelationships"),
        linked_segmentation_layer=spec.get("linkedSegmentationLayer"),
        filter_by_segmentation=spec.get("filterBySegmentation"))


def _restore(ng: Any, s: Any, state: dict[str, Any]) -> None:
    """Where a saved session was: its space, position, zoom and layout; per layer still
    there, its visibility and selected bodies (the layers themselves are this session's)."""
    if "dimensions" in state:
        s.dimensions = ng.CoordinateSpace(json=state["dimensions"])
    for key, attr in (("position", "position"), ("crossSectionScale", "cross_section_scale"),
                      ("projectionScale", "projection_scale"), ("layout", "layout")):
        if key in state:
            setattr(s, attr, state[key])
    saved = {la["name"]: la for la in state.get("layers", [])}
    for layer in s.layers:
        old = saved.get(layer.name, {})
        if "visible" in old:
            layer.visible = old["visible"]
        if "segments" in old and layer.type == "segmentation":
            layer.segments = [int(str(b).lstrip("!")) for b in old["segments"]]


def _bodies(text: str | None) -> list[int]:
    try:
        return [int(b) for b in (text or "").replace(" ", "").split(",") if b]
    except ValueError:
        raise ConfigError(f"--bodies {text!r}: expected body ids, e.g. --bodies 12,40") from None


def register(app: typer.Typer) -> None:
    @app.command("view")
    def view(
        workspace: Path = WorkspaceOpt,
        bodies: Annotated[str | None, typer.Option(
            help="Bodies to select, comma-separated ids (their synapses only, too).")] = None,
        port: Annotated[int, typer.Option(help="Viewer port on 127.0.0.1 (0: a free one).")] = 0,
        input_dir: Annotated[Path | None, typer.Option(
            "--input", help="The tile directory, for a phantom's ground truth (default: the "
                            "one the workspace was run on).")] = None,
        state: Annotated[Path | None, typer.Option(
            help="Start from a saved state (position, zoom, selected bodies).")] = None,
        save_state: Annotated[Path | None, typer.Option(
            help="Write the viewer state (JSON) here, and again when the viewer stops.")] = None,
        for_s: Annotated[float | None, typer.Option(
            "--for", help="Serve this many seconds, then stop (default: until Ctrl-C).")] = None,
    ) -> None:
        """Open the workspace in neuroglancer: EM, labels, synapses, flags, quality heat maps.

        Serves on 127.0.0.1 only and prints the URL to open in a browser; volumes are read
        as OME-Zarr, so the voxel sizes are the files' own.
        """
        from pipeline.registry import recorded_sources

        ws = Workspace.open(workspace)
        src = input_dir or recorded_sources(ws).get("tile_dir")
        if src is None and (ws.root / "input").is_dir():
            src = ws.root / "input"
        saved = json.loads(state.read_text()) if state else None
        session = open_view(ws, src, _bodies(bodies), port, saved)
        for la in session.layers:
            typer.echo(f"  layer {la.name}{'' if la.visible else ' (hidden)'}", err=True)
        typer.echo(session.url)
        try:
            if save_state:
                save_state.write_text(json.dumps(session.state_json(), indent=1))
            with contextlib.suppress(KeyboardInterrupt):
                typer.echo("viewer running; " + (f"stops in {for_s:g} s" if for_s else
                                                 "Ctrl-C stops it"), err=True)
                deadline = time.monotonic() + for_s if for_s else None
                while deadline is None or time.monotonic() < deadline:
                    time.sleep(0.2)
            if save_state:
                save_state.write_text(json.dumps(session.state_json(), indent=1))
                typer.echo(f"viewer state written to {save_state}", err=True)
        finally:
            session.close()
