"""Which bodies a synapse candidate joins, read from the segmentation around it.

A single voxel under each predicted point is a fragile lookup: pre and post points sit a
few voxels apart on either side of the cleft (~40 nm), so a point one voxel off lands on
the membrane or on the partner, and the synapse becomes an autapse. Two robust readings:

``assign_by_mask`` (the default): the post mask covers the post side and spills over
the cleft into the pre side, so the body under most of its probability is post and the
next one (``min_share`` of it, ``min_votes`` voxels) pre. On dense insect neuropil it
finds the right pre body about twice as often as the directions do (BENCHMARKS.md): at
~40 nm from the partner the predicted directions are mostly noise, and a line along them
meets some other neighbour first.

``assign``: every voxel of the candidate votes, as in synful (Buhmann et al. 2021):

- its **post** body is the body under it;
- its **pre** body is where the line along its predicted direction to the partner
  (1 to 3 times the predicted length: predictions fall short more often than they
  overshoot) first meets another body.

Votes for the same two bodies in both orientations are one contact seen from both
sides (the mask spills over the cleft): the orientation with more weight wins. Each
(pre, post) pair holding at least ``min_share`` of the candidate's weight
(probability) and ``min_votes`` voxels is one synapse: a mask component that covers
several neighbouring synapses on one dendrite (common for en-passant boutons) is split
into them, and the stray votes of one are not a synapse. Its post point is its most
probable voxel, its pre point the landing voxel on the pre body nearest that post point
(where the true pre point sits: at the contact).

Supervoxel ids are returned (bodies change when the agglomeration is refined); 0 means
no body was found on that side.
"""

from __future__ import annotations

import numpy as np

REACH_SCALES = (1.0, 1.5, 2.0, 3.0)  # multiples of a voxel's direction tried, in order


def assign(cand: dict, direction: np.ndarray, svs: np.ndarray, bodies,
           min_share: float = 0.15, min_votes: int = 50) -> list[dict]:
    """Synapses of one ``detect.candidates`` entry: dicts with pre_sv, post_sv, pre and
    post points (voxels of the frame of ``svs`` and ``direction``, (3, Z, Y, X) voxels),
    confidence (peak probability) and size (voxels). ``bodies`` is a ``BodyLookup``."""
    vox, w, post_sv, post_body = _under(cand, svs, bodies)
    shape = np.array(svs.shape)
    step = np.stack([direction[c][tuple(vox.T)] for c in range(3)], 1)
    pre_sv = np.zeros(len(vox), np.uint64)
    pre_at = np.zeros_like(vox)
    pre_body = np.zeros(len(vox), np.uint64)
    for scale in REACH_SCALES:
        land = np.clip(np.rint(vox + scale * step).astype(int), 0, shape - 1)
        sv = svs[tuple(land.T)].astype(np.uint64)
        b = bodies(sv)
        new = (pre_body == 0) & (b != post_body) & (b > 0)
        pre_sv[new], pre_at[new], pre_body[new] = sv[new], land[new], b[new]
    voted = (post_body > 0) & (pre_body > 0)
    out = []
    if voted.any():
        a, b = pre_body[voted], post_body[voted]
        pairs, inv = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1), axis=0,
                               return_inverse=True)
        inv = inv.reshape(-1)
        mass = np.bincount(inv, weights=w[voted])
        idx = np.nonzero(voted)[0]
        for k in np.argsort(-mass):
            both = idx[inv == k]
            # one contact, seen from both sides: the side with more weight is the post side
            fwd = pre_body[both] == pairs[k][0]
            mine = both[fwd] if w[both[fwd]].sum() >= w[both[~fwd]].sum() else both[~fwd]
            if mass[k] < min_share * w.sum() or len(mine) < min_votes:
                continue
            best = mine[int(np.argmax(w[mine]))]
            near = mine[int(np.argmin(np.linalg.norm((pre_at[mine] - vox[best]), axis=1)))]
            out.append({"pre_sv": int(pre_sv[near]), "post_sv": int(post_sv[best]),
                        "pre": pre_at[near].astype(float), "post": vox[best].astype(float),
                        "confidence": float(w[best]), "size": int(len(mine))})
    return out or [_orphan(cand, vox, w, post_sv)]


def _under(cand: dict, svs: np.ndarray, bodies):
    """A candidate's voxels (frame of ``svs``), their probabilities, supervoxels, bodies."""
    at = np.nonzero(cand["prob"] > 0)
    vox = np.stack(at, 1) + np.array([s.start for s in cand["box"]])
    sv = svs[tuple(vox.T)].astype(np.uint64)
    return vox, cand["prob"][at], sv, bodies(sv)


def _orphan(cand: dict, vox: np.ndarray, w: np.ndarray, sv: np.ndarray) -> dict:
    """No partner found: one synapse without a pre side, for the proofreading list."""
    k = int(np.argmax(w))
    return {"pre_sv": 0, "post_sv": int(sv[k]), "pre": np.asarray(cand["pre"], float),
            "post": vox[k].astype(float), "confidence": float(w[k]), "size": int(len(vox))}


def assign_by_mask(cand: dict, svs: np.ndarray, bodies, min_share: float = 0.15,
                   min_votes: int = 50) -> list[dict]:
    """Synapses of one candidate read from the mask alone: it covers the cleft and spills
    over to the partner, so the body under most of its probability is the post side and
    the next one the pre side (``min_votes`` voxels of it). Same dicts as ``assign``."""
    vox, w, sv, body = _under(cand, svs, bodies)
    ok = np.nonzero(body > 0)[0]
    ids, inv = np.unique(body[ok], return_inverse=True)
    inv = inv.reshape(-1)
    mass, count = np.bincount(inv, weights=w[ok]), np.bincount(inv)
    order = np.argsort(-mass)
    if len(order) < 2 or count[order[1]] < min_votes or mass[order[1]] < min_share * w.sum():
        return [_orphan(cand, vox, w, sv)]
    post = ok[inv == order[0]]
    pre = ok[inv == order[1]]
    best = post[int(np.argmax(w[post]))]
    near = pre[int(np.argmin(np.linalg.norm(vox[pre] - vox[best], axis=1)))]
    return [{"pre_sv": int(sv[near]), "post_sv": int(sv[best]), "pre": vox[near].astype(float),
             "post": vox[best].astype(float), "confidence": float(w[best]),
             "size": int(len(post) + len(pre))}]
