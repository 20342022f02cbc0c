"""``cxgraph view``: neuroglancer, in headless Chromium, opens a reconstructed phantom.

Chromium and its driver are Debian packages (``chromium``, ``chromium-driver``; installed by
scripts/setup.sh when it runs as root); without them the browser test is skipped, saying so.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import chromium, needs_chromium

from cxgraph.commands.view import open_view
from cxgraph.config import Config
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.phantom import PhantomParams, render_phantom

registry.load()


# every layer's data sources: their coordinate spaces, or the error that kept them from loading
LAYER_SPACES = """
const out = {};
for (const ml of viewer.layerManager.managedLayers) {
  out[ml.name] = (ml.layer ? ml.layer.dataSources : []).map(d => {
    const ls = d.loadState;
    if (!ls || !ls.dataSource) return {error: String(ls && ls.error)};
    const sp = ls.dataSource.modelTransform.inputSpace;
    const out = ls.transform.value.outputSpace;
    return {names: sp.names, scales: Array.from(sp.scales), units: sp.units,
            out: out.names, upper: Array.from(out.bounds.upperBounds)};
  });
}
return JSON.stringify(out);
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """A small phantom with a missing section, run through every default stage (L3 on the
    baseline boundary filter: the network's own tests are elsewhere)."""
    root = tmp_path_factory.mktemp("view")
    render_phantom(root / "ws" / "input", PhantomParams(
        shape=(8, 192, 192), seed=3, tile_size=112, faults=("missing-section:z=5",)))
    ws = Workspace.create(root / "ws", Config().with_overrides(["affinities.method=baseline"]))
    registry.run_pipeline(ws, {"tile_dir": ws.root / "input"})
    return ws


def test_layers_cover_every_kind_of_data(ws):
    session = open_view(ws, ws.root / "input", bodies=[1, 2])
    try:
        kinds = {la.name: la.kind for la in session.layers}
        assert kinds["aligned"] == "image" and kinds["raw"] == "image"
        assert kinds["segmentation"] == kinds["supervoxels"] == "segmentation"
        assert kinds["ground truth"] == "segmentation"  # the phantom's, to compare with
        syn = next(la for la in session.layers if la.name.startswith("synapses"))
        assert syn.spec["filterBySegmentation"] == ["pre", "post"]  # --bodies filters them
        assert all(set(a["segments"][0] + a["segments"][1]) & {"1", "2"}
                   for a in syn.spec["annotations"])
        flags = next(la for la in session.layers if la.name.startswith("flags"))
        assert any("z=5" in a["description"] for a in flags.spec["annotations"])
        assert any(la.kind == "heat" for la in session.layers)
        state = session.state_json()
        src = state["layers"][0]["source"]
        url = src if isinstance(src, str) else src[0] if isinstance(src[0], str) else src[0]["url"]
        assert url.startswith("zarr3://http://127.0.0.1:")
        assert session.url.startswith("http://127.0.0.1:")
        seg = next(la for la in state["layers"] if la["name"] == "ground truth")
        assert sorted(seg["segments"]) == ["1", "2"]
    finally:
        session.close()


@needs_chromium
def test_neuroglancer_in_chromium_loads_the_layers_with_the_files_voxel_sizes(ws, tmp_path):
    from PIL import Image

    session = open_view(ws, ws.root / "input")
    driver = chromium(tmp_path)
    try:
        driver.get(session.url)
        # neuroglancer answers once every visible layer has loaded its data
        shot = session.viewer.screenshot(size=[640, 480]).screenshot
        img = np.asarray(Image.open(io.BytesIO(shot.image)).convert("L"))
        Path(tmp_path / "view.png").write_bytes(shot.image)
        assert img.shape == (480, 640) and img.std() > 10, "the screenshot is blank"
        # each volume layer's coordinate space, as neuroglancer built it from the OME-Zarr
        # metadata it read (nothing in the state says it)
        spaces = json.loads(driver.execute_script(LAYER_SPACES))
        vs = ws.array("aligned").attrs["voxel_size"]
        for name in ("aligned", "raw", "segmentation", "supervoxels"):
            (space,) = spaces[name]
            assert space["names"] == ["z", "y", "x"] and space["units"] == ["m"] * 3, space
            assert space["scales"] == pytest.approx([v * 1e-9 for v in vs])
        # the phantom's truth (a plain array) lands on the same voxels as the EM
        shape = list(ws.array("aligned").shape)
        assert spaces["ground truth"][0]["out"] == ["z", "y", "x"]
        assert spaces["ground truth"][0]["upper"] == pytest.approx(shape)
        assert spaces["aligned"][0]["upper"] == pytest.approx(shape)
        failed = {n: s for n, ss in spaces.items() for s in ss if "error" in s}
        assert not failed, failed
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "favicon.ico" not in e["message"]]
        assert not errors, json.dumps(errors, indent=1)
    finally:
        driver.quit()
        session.close()
