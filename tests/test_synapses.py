"""L4 on tiny inputs with exact answers: targets <-> candidates, partner scoring, the
refinement's safe-merge rule and its proofreading list."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from cxgraph.config import Config
from cxgraph.workspace import Workspace
from pipeline import registry
from pipeline.synapses.detect import DIRECTION_SCALE, candidates, synapse_balls, targets
from pipeline.synapses.evaluate import partner_scores

PRE = np.array([[5.0, 20, 20], [5, 40, 44]])
POST = np.array([[5.0, 26, 20], [6, 40, 36]])


def test_targets_decode_back_to_the_synapses():
    post_ids, pre_ids = synapse_balls((12, 64, 64), PRE, POST)
    y, valid = targets(post_ids, pre_ids)
    assert valid[1:][:, post_ids > 0].min() == 1.0
    found = candidates(y[0], y[1:] * DIRECTION_SCALE, threshold=0.5)
    assert len(found) == 2
    for c in found:
        k = int(np.argmin(np.linalg.norm(POST - c["post"], axis=1)))
        assert np.linalg.norm(c["post"] - POST[k]) <= 4.5  # the most confident voxel of the ball
        assert np.linalg.norm(c["pre"] - PRE[k]) <= 1.0  # the mean direction points home


def test_one_mask_over_two_synapses_is_split_at_their_peaks():
    """Two post sites 24 px apart on one dendrite whose masks touch (as on insect boutons):
    one component, two synapses once split at its peaks; a single bump stays whole."""
    zz, yy, xx = np.indices((8, 64, 96), dtype=np.float32)
    bump = [np.exp(-((zz - 4) ** 2 / 2 + (yy - 32) ** 2 / 72 + (xx - x0) ** 2 / 72))
            for x0 in (36, 60)]
    prob = np.maximum(*bump) + 0.6 * np.exp(-((zz - 4) ** 2 / 2 + (yy - 32) ** 2 / 30))
    prob *= (np.abs(xx - 48) < 20)  # the bridge between them stays above the threshold
    direction = np.zeros((3, *prob.shape), np.float32)
    assert len(candidates(prob, direction, threshold=0.5)) == 1
    found = candidates(prob, direction, threshold=0.5, peak_radius=(1, 10, 10))
    assert sorted(int(c["post"][2]) for c in found) == [36, 60]
    assert sum(c["size"] for c in found) == int((prob > 0.5).sum())  # every voxel kept
    single = np.where(xx < 48, prob, 0)
    assert len(candidates(single, direction, threshold=0.5, peak_radius=(1, 10, 10))) == 1


def test_peaks_of_one_synapse_on_the_same_partners_are_one_synapse():
    from pipeline.segment.agglomeration import BodyLookup
    from pipeline.synapses.extract_stage import _one_per_partner_pair

    def syn(pre, post, conf, size):
        return {"pre_sv": pre, "post_sv": post, "confidence": conf, "size": size}

    ids = np.array([5, 6, 7], np.uint64)
    pieces = [(1, syn(5, 7, 0.90, 300)), (1, syn(5, 7, 0.95, 200)),  # one synapse, two peaks
              (1, syn(7, 5, 0.97, 100)),  # its mask spilling over the cleft: the same one
              (1, syn(6, 7, 0.92, 250)),  # another bouton onto the same dendrite
              (1, syn(6, 5, 0.91, 120)),  # stray votes of a flank: too few (min_voxels)
              (1, syn(0, 7, 0.91, 220)),  # a partnerless piece beside them
              (2, syn(0, 6, 0.93, 400))]  # a component with no partner at all: the orphan
    out = _one_per_partner_pair(pieces, BodyLookup.of(ids, ids), min_voxels=200)
    got = sorted((s["pre_sv"], s["post_sv"], s["confidence"], s["size"]) for s in out)
    # the heaviest piece's orientation and points, the votes of all
    assert got == [(0, 6, 0.93, 400), (5, 7, 0.90, 600), (6, 7, 0.92, 250)]


def test_partner_scores_count_distance_and_partners():
    gt = np.zeros((12, 64, 64), np.uint64)
    gt[:, :23] = 1  # synapse 1: pre in body 1 ...
    gt[:, 23:] = 2  # ... post in body 2
    truth = {"pre_id": [1], "post_id": [2], "pre_z": [5], "pre_y": [20], "pre_x": [20],
             "post_z": [5], "post_y": [26], "post_x": [20]}
    good = {k: v for k, v in truth.items() if k not in ("pre_id", "post_id")}  # exact points
    vs = (40, 8, 8)
    assert partner_scores(good, truth, gt, vs)["f"] == 1.0
    swapped = {**good, "pre_y": [26], "post_y": [20]}  # direction reversed: wrong partners
    assert partner_scores(swapped, truth, gt, vs)["tp"] == 0
    far = {**good, "post_x": [20 + 60]}  # 480 nm away
    r = partner_scores(far, truth, gt, vs)
    assert r["tp"] == 0 and r["precision"] == 0 and r["recall"] == 0


def test_refine_merges_an_inner_fragment_but_not_an_autapse(tmp_path):
    """Bodies: 10 (large, touches the faces), 20 (a small fragment inside), 30 (inside,
    but has a synapse with 10). Untaken forest edges 10-20 and 10-30, both at 0.4 (under
    the safe-merge rule's safe_score 0.45)."""
    ws = Workspace.create(tmp_path / "ws", Config())
    ws.create_array("supervoxels", (20, 100, 100), np.uint64)
    sv = pl.DataFrame({
        "sv_id": [1, 2, 3], "body_id": [10, 20, 30], "size": [50000, 500, 800],
        "z0": [0, 5, 5], "y0": [0, 40, 60], "x0": [0, 40, 60], "z1": [20, 8, 8],
        "y1": [100, 50, 70], "x1": [100, 50, 70], "centroid_z": [10.0, 6, 6],
        "centroid_y": [50.0, 45, 65], "centroid_x": [50.0, 45, 65], "block": [0, 0, 0],
        "stage_run": ["a", "a", "a"]})
    forest = pl.DataFrame({"sv_a": [1, 1], "sv_b": [2, 3], "score": [0.4, 0.4],
                           "affinity": [0.6, 0.6], "step": [0, 1], "merged": [False, False],
                           "block": [0, 0], "stage_run": ["a", "a"]})
    cand = pl.DataFrame({
        "synapse_id": [7], "pre_sv": [1], "post_sv": [3], "pre_body": [10], "post_body": [30],
        "pre_z": [6.0], "pre_y": [58.0], "pre_x": [58.0], "post_z": [6.0], "post_y": [62.0],
        "post_x": [62.0], "confidence": [0.9], "size": [20], "block": [0]})
    for name, df in (("supervoxels", sv), ("agglomeration", forest),
                     ("synapse_candidates", cand)):
        ws.write_table(name, df.to_arrow())
    (res,) = registry.run_pipeline(ws, only=["refine"])
    assert res.action == "ran"
    ops = ws.read_table("operations").to_pylist()
    assert len(ops) == 1 and ops[0]["kind"] == "merge" and sorted(ops[0]["retired"]) == [10, 20]
    new = ops[0]["created"][0]
    assert json.loads(ops[0]["params"])["edges"] == [{"sv_a": 1, "sv_b": 2, "score": 0.4}]
    syn = ws.read_table("synapses").to_pylist()
    assert [(s["pre_body"], s["post_body"]) for s in syn] == [(new, 30)]
    assert ws.read_table("connections").to_pylist() == [
        {"pre": new, "post": 30, "weight": 1, "confidence_mean": 0.9}]
    proof = ws.read_table("proofreading").to_pylist()
    split = [p for p in proof if p["kind"] == "split"]
    assert len(split) == 1 and {split[0]["body_a"], split[0]["body_b"]} == {new, 30}
    assert "autapse" in split[0]["evidence"] and split[0]["synapses_affected"] == 1
    assert proof[0]["rank"] == 1
    # the stage contract for a stage without blocks: a no-op re-run, a deleted output
    assert registry.run_pipeline(ws, only=["refine"])[0].action == "reused"
    ws.table_path("proofreading").unlink()
    assert registry.run_pipeline(ws, only=["refine"])[0].action == "ran"
    again = ws.read_table("operations").to_pylist()  # the same, under the new run's name
    assert [{**o, "stage_run": None} for o in again] == [{**o, "stage_run": None} for o in ops]


def _site(shape, box, prob=0.9):
    """A ``detect.candidates``-like entry: probability ``prob`` over ``box`` (slices)."""
    p = np.zeros(tuple(s.stop - s.start for s in box), np.float32) + prob
    peak = np.array([s.start for s in box], float)
    return {"box": box, "prob": p, "post": peak, "pre": peak, "confidence": prob,
            "size": p.size}


def test_partners_follow_a_short_direction_across_the_cleft():
    """The predicted direction reaches only halfway to the bouton (it falls short, as
    trained networks' do): each voxel's vote keeps going along it until it meets
    another body, so the synapse is 1 -> 2, not the autapse 2 -> 2 a single looked-up
    point would give. The pre point sits at the contact, next to the post point."""
    from pipeline.segment.agglomeration import BodyLookup
    from pipeline.synapses.partners import assign

    shape = (8, 64, 64)
    svs = np.zeros(shape, np.uint64)
    svs[:, :22] = 1  # the bouton
    svs[:, 22:, :32] = 2  # the dendrite, in two supervoxels of one body
    svs[:, 22:, 32:] = 3
    bodies = BodyLookup.of(np.array([1, 2, 3], np.uint64), np.array([1, 2, 2], np.uint64))
    direction = np.zeros((3, *shape), np.float32)
    direction[1] = -3.0  # 3 voxels up; the post zone is 2-8 voxels from the bouton
    cand = _site(shape, (slice(3, 5), slice(24, 30), slice(20, 28)))
    (syn,) = assign(cand, direction, svs, bodies)
    assert (syn["pre_sv"], syn["post_sv"]) == (1, 2)
    assert syn["pre"][1] == 21 and svs[tuple(syn["pre"].astype(int))] == 1
    # a direction pointing nowhere finds no partner: an orphan, not an invented synapse
    (orphan,) = assign(cand, np.zeros_like(direction), svs, bodies)
    assert orphan["pre_sv"] == 0 and orphan["post_sv"] == 2


def test_partners_by_mask_read_the_two_bodies_under_the_spilled_mask():
    """The mask covers the post side and spills over the cleft into the bouton: the body
    under most of it is post, the next one pre; a mask inside one body, or touching a
    neighbour with a sliver under ``min_share`` of it, has no partner (an orphan)."""
    from pipeline.segment.agglomeration import BodyLookup
    from pipeline.synapses.partners import assign_by_mask

    shape = (8, 64, 64)
    svs = np.zeros(shape, np.uint64)
    svs[:, :22] = 1  # the bouton
    svs[:, 22:, :32], svs[:, 22:, 32:] = 2, 3  # the dendrite, two supervoxels of one body
    bodies = BodyLookup.of(np.array([1, 2, 3], np.uint64), np.array([1, 2, 2], np.uint64))
    cand = _site(shape, (slice(3, 5), slice(19, 29), slice(16, 32)))  # 3 rows in the bouton
    (syn,) = assign_by_mask(cand, svs, bodies)
    assert (syn["pre_sv"], syn["post_sv"]) == (1, 2)
    assert syn["pre"][1] == 21 and syn["size"] == cand["prob"].size  # pre at the contact
    inside = _site(shape, (slice(3, 5), slice(24, 30), slice(20, 28)))
    assert assign_by_mask(inside, svs, bodies)[0]["pre_sv"] == 0
    sliver = _site(shape, (slice(3, 5), slice(21, 31), slice(20, 28)))  # 1 row of 10: 10 %
    assert assign_by_mask(sliver, svs, bodies, min_share=0.15, min_votes=1)[0]["pre_sv"] == 0


def test_partners_split_one_mask_over_two_boutons_and_read_a_two_sided_mask_once():
    from pipeline.segment.agglomeration import BodyLookup
    from pipeline.synapses.partners import assign

    shape = (8, 64, 64)
    svs = np.zeros(shape, np.uint64)
    svs[:, :22, :32], svs[:, :22, 32:] = 1, 2  # two boutons side by side ...
    svs[:, 22:] = 3  # ... on one dendrite
    bodies = BodyLookup.of(np.array([1, 2, 3], np.uint64), np.array([1, 2, 3], np.uint64))
    direction = np.zeros((3, *shape), np.float32)
    direction[1] = -6.0
    cand = _site(shape, (slice(3, 5), slice(23, 27), slice(8, 56)))
    pairs = sorted((s["pre_sv"], s["post_sv"]) for s in assign(cand, direction, svs, bodies))
    assert pairs == [(1, 3), (2, 3)]
    # The mask spills over the cleft into bouton 1 (less weight there), where the
    # directions point back down into the dendrite: still one synapse, 1 -> 3.
    direction[1, :, :22] = 6.0
    cand = _site(shape, (slice(3, 5), slice(18, 28), slice(8, 24)))
    cand["prob"][:, :4] = 0.5  # y 18..21: the bouton side
    (syn,) = assign(cand, direction, svs, bodies)
    assert (syn["pre_sv"], syn["post_sv"]) == (1, 3)
