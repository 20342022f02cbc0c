"""L3 segmentation: exact answers on tiny inputs, then the shipped network on a phantom
volume whose seed no training run used."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from cxgraph import ids
from cxgraph.config import Config
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.segment import agglomeration as agg
from pipeline.segment.affinity import affinities
from pipeline.segment.evaluate import score, score_phantom
from pipeline.segment.fragments import fragments_xy

NN = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))


def two_objects(shape=(4, 32, 32)) -> np.ndarray:
    lab = np.ones(shape, np.uint64)
    lab[:, :, 16:] = 2
    return lab


def test_affinities_of_two_objects_are_zero_only_across_their_wall():
    affs, mask = affinities(two_objects(), NN)
    assert affs[2][:, :, 16].max() == 0 and affs[2][:, :, 17:].min() == 1
    assert affs[0][1:].min() == 1 and mask[0][0].max() == 0  # no neighbour before z = 0
    assert affs[1][:, 1:].min() == 1


def test_fragments_do_not_cross_a_wall_and_merge_scores_rejoin_each_side():
    lab = two_objects()
    affs, _ = affinities(lab, NN)
    frag = fragments_xy(affs, seed_distance_px=3)
    for f in np.unique(frag):
        assert len(np.unique(lab[frag == f])) == 1  # never straddles the wall
    svs = ids.supervoxel_ids((0, 0, 0), frag)
    u, v, s = agg.block_merge_scores(affs, svs)
    forest = agg.merge_forest(u, v, s)
    keep = forest[s[forest] <= 0.5]
    all_svs = np.unique(svs)
    comp = agg.components(all_svs, u[keep], v[keep])
    body = dict(zip(all_svs.tolist(), agg.body_ids(all_svs, comp).tolist(), strict=True))
    seg = np.vectorize(body.get)(svs)
    assert score(seg, lab)["voi"] < 1e-9 and len(np.unique(seg)) == 2
    # a body id is its supervoxels': the same set gives the same id
    assert agg.body_ids(all_svs, comp).tolist() == agg.body_ids(all_svs, comp).tolist()


def test_an_edge_two_blocks_see_keeps_the_higher_score_and_the_owners_threshold():
    lab = two_objects((2, 16, 32))
    affs, _ = affinities(lab, NN)
    affs[2][:, :, 16] = 0.2  # a weak wall: the edge gets a score (an affinity-0 edge never does)
    left = ids.supervoxel_ids((0, 0, 0), np.where(lab == 1, 1, 0))
    right = ids.supervoxel_ids((0, 0, 1), np.where(lab == 2, 1, 0))
    a, b = int(left.max()), int(right.max())
    u, v, _ = agg.block_merge_scores(affs, left + right)
    assert (u.tolist(), v.tolist()) == ([a], [b])  # each block that sees it scores it
    own, other = ids.block_id((0, 0, 0)), ids.block_id((0, 0, 1))
    stale = ids.supervoxel_id((0, 0, 1), 7)  # replaced by a regional re-run
    # the owner (the lower supervoxel's block) saw a weak boundary (0.3), its neighbour,
    # whose view is whole, a strong one (0.6): merged only if both agree, at the owner's cut
    got = agg.combine_views([a, a, a], [b, b, stale], [0.3, 0.6, 0.1], [own, other, own],
                            [0.4, 0.9, 0.4], known=np.array([a, b], np.uint64))
    assert [x.tolist() for x in got] == [[a], [b], [0.6], [own], [0.4]]
    # an edge its owner never saw takes the lowest threshold of the blocks that did
    got = agg.combine_views([a, a], [b, b], [0.3, 0.2], [other, other + 1], [0.9, 0.7],
                            known=np.array([a, b], np.uint64))
    assert got[2].tolist() == [0.3] and got[4].tolist() == [0.7]


def test_test_time_augmentation_maps_every_view_back_to_the_same_affinities(monkeypatch):
    """An equivariant predictor (affinity logit along each axis = sum of the two voxels'
    grey) must give the same affinities through every flipped or transposed view."""
    from pipeline.segment import affinities_stage as stage

    def equivariant(x, path, threads):
        out = np.zeros((8, *x.shape), np.float32)
        for axis in range(3):
            prev = np.concatenate([x.take([0], axis), x.take(range(x.shape[axis] - 1), axis)],
                                  axis)
            out[axis] = x + prev
        return out

    monkeypatch.setattr(stage, "predict", equivariant)
    x = np.random.default_rng(0).normal(size=(4, 10, 13)).astype(np.float32)
    plain = stage.predict_affinities(x, "-", 1, tta=1)
    for tta in (4, 8):
        averaged = stage.predict_affinities(x, "-", 1, tta=tta)
        assert averaged.shape == plain.shape
        # the first voxel along an axis has no -axis neighbour: a flipped view guesses it
        inner = np.s_[:, 1:, 1:, 1:]
        np.testing.assert_allclose(averaged[inner], plain[inner], rtol=1e-5)
    with pytest.raises(Exception, match="affinities.tta"):
        stage.AffinityParams(tta=3)


def test_uneven_staining_flattens_toward_bright_and_keeps_the_noise():
    from pipeline.phantom.appearance import immerkaer_noise
    from pipeline.segment.train import _uneven_staining

    rng = np.random.default_rng(3)
    clean = np.where(np.arange(96) % 16 < 2, -1.0, 0.6).astype(np.float32)  # dark membranes
    x = np.broadcast_to(clean, (4, 96, 96)) + rng.normal(0, 0.1, (4, 96, 96)).astype(np.float32)
    y = _uneven_staining(x.copy(), np.random.default_rng(0))
    wall, inside = (np.arange(96) % 16 < 2), (np.arange(96) % 16 >= 4)
    contrast = lambda v: v[..., inside].mean() - v[..., wall].mean()  # noqa: E731
    assert contrast(y) < 0.75 * contrast(x)  # membranes fainter: factor U(0.1, 0.6) .. +0.3
    assert y.mean() > x.mean()  # lighter, toward the bright level
    noise = lambda v: np.median([immerkaer_noise(s) for s in v])  # noqa: E731
    assert abs(noise(y) - noise(x)) < 0.2 * noise(x)  # the detector noise is unchanged


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """A phantom (seed 901, never used in training) through L1-L3 with the shipped model."""
    from pipeline.phantom import PhantomParams, render_phantom

    root = tmp_path_factory.mktemp("segment")
    render_phantom(root / "in", PhantomParams(seed=901, shape=(16, 256, 256)))
    ws = Workspace.create(root / "ws", Config().with_overrides(
        ["blocks.block_shape=[16,128,128]", "blocks.chunk_shape=[16,128,128]"]))
    registry.run_pipeline(ws, {"tile_dir": root / "in"}, until="segmentation")
    gt = np.asarray(zarr.open_array(str(root / "in" / "gt" / "labels.zarr"), mode="r")[...])
    return ws, gt, root / "in"


def test_shipped_model_segments_an_unseen_phantom(segmented):
    ws, _, phantom_dir = segmented
    s = score_phantom(np.asarray(ws.array("segmentation")[...]),
                      np.asarray(ws.array("aligned")[...]), phantom_dir)
    # Measured: VOI 1.25 (split 0.59, merge 0.66), ARAND 0.126; the model before its
    # fine-tune 1.42 / 0.144; the non-learned baseline on the same volume scores VOI 4.84 /
    # ARAND 0.81 at its best threshold. In a freshly installed environment (same torch,
    # newer scientific stack) the same code and weights give 1.31 / 0.168, the model
    # before 1.50 / 0.161: ARAND here hinges on a few large merges, so VOI is the bound
    # that tells the models apart and ARAND's only catches a collapse. The targets
    # (VOI <= 0.5, ARAND <= 0.1, BENCHMARKS.md) are not met yet; these bounds catch a
    # regression, not a success.
    assert s["voi"] <= 1.40 and s["arand"] <= 0.20, s


def test_supervoxel_ids_are_unique_and_name_their_block(segmented):
    ws, *_ = segmented
    svs = np.asarray(ws.array("supervoxels")[...])
    frag = ws.read_table("fragments").to_pydict()
    assert len(set(frag["sv_id"])) == len(frag["sv_id"])
    for z, y, x in ((0, 0, 0), (0, 200, 200)):
        part = ids.decode(int(svs[z, y, x]))
        assert part.kind == "supervoxel" and part.block == (z // 16, y // 128, x // 128)


def test_merge_history_reproduces_the_segmentation(segmented):
    ws, *_ = segmented
    hist = ws.read_table("agglomeration").to_pydict()
    merged = np.array(hist["merged"])
    sv_table = ws.read_table("supervoxels").to_pydict()
    svs = np.array(sv_table["sv_id"], np.uint64)
    comp = agg.components(svs, np.array(hist["sv_a"], np.uint64)[merged],
                          np.array(hist["sv_b"], np.uint64)[merged])
    assert agg.body_ids(svs, comp).tolist() == [int(b) for b in sv_table["body_id"]]
    body = dict(zip(sv_table["sv_id"], sv_table["body_id"], strict=True))
    seg = np.asarray(ws.array("segmentation")[...])
    sv_vol = np.asarray(ws.array("supervoxels")[...])
    for sv in np.unique(sv_vol)[:200]:
        assert np.unique(seg[sv_vol == sv]).tolist() == [body[int(sv)]]


def _partition(ws) -> set[frozenset[int]]:
    """The bodies as sets of supervoxels (body ids themselves may be renumbered)."""
    t = ws.read_table("supervoxels").to_pydict()
    groups: dict[int, set[int]] = {}
    for sv, b in zip(t["sv_id"], t["body_id"], strict=True):
        groups.setdefault(b, set()).add(sv)
    return {frozenset(g) for g in groups.values()}


def test_regional_rerun_keeps_bodies_crossing_its_border_consistent(segmented, tmp_path):
    import shutil

    from pipeline.engine import Roi

    ws, *_ = segmented
    shutil.copytree(ws.root, tmp_path / "ws")
    ws2 = Workspace.open(tmp_path / "ws")
    corner = Roi((0, 0, 0), (16, 128, 128))
    ws2.set_config(ws2.config.with_regional(corner.as_list(), ["agglomerate.threshold=0.3"]))
    results = registry.run_pipeline(ws2, region=corner, start="agglomerate",
                                    until="segmentation")
    assert [r.action for r in results] == ["ran", "ran"]
    sv_table = ws2.read_table("supervoxels").to_pydict()
    body = dict(zip(sv_table["sv_id"], sv_table["body_id"], strict=True))
    seg = np.asarray(ws2.array("segmentation")[...])
    sv_vol = np.asarray(ws2.array("supervoxels")[...])
    uniq, inverse = np.unique(sv_vol, return_inverse=True)
    expect = np.array([body.get(int(s), 0) for s in uniq], np.uint64)[inverse].reshape(
        sv_vol.shape)
    assert np.array_equal(seg, expect)  # every voxel, inside and outside the region

    # the region's threshold holds for its blocks' edges only, and is not the volume's
    reopened = Workspace.open(ws2.root)
    assert reopened.config["agglomerate"].threshold == 0.5
    assert reopened.config.at(corner.as_list())["agglomerate"].threshold == 0.3
    edges = ws2.read_table("agglomeration_edges").to_pydict()
    by_block = {(b, t) for b, t in zip(edges["block"], edges["threshold"], strict=True)}
    first = ids.block_id((0, 0, 0))
    assert {t for b, t in by_block if b == first} == {0.3}
    assert {t for b, t in by_block if b != first} == {0.5}

    # a later whole run keeps the corner's parameters: the same bodies, then nothing to do
    regional_bodies = _partition(ws2)
    assert regional_bodies != _partition(ws)  # (0.3 does change the corner's bodies)
    whole = registry.run_pipeline(reopened, start="agglomerate", until="segmentation")
    assert [r.action for r in whole] == ["ran", "ran"]
    assert _partition(reopened) == regional_bodies
    again = registry.run_pipeline(reopened, start="agglomerate", until="segmentation")
    assert [r.action for r in again] == ["reused", "reused"]
