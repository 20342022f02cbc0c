"""The L4 ``synapses`` stage: synapse candidates with their partners, block by block.

Each block reads the predictions and the supervoxels over its write region plus
``context`` (the reach of the predicted direction), extracts candidates
(``detect.candidates``), keeps those whose post point lies in its own write region
(so a synapse on a block face is counted once), and finds the supervoxels on either
side of the cleft (``partners.py``: by default the two bodies under most of the mask,
which spills over the cleft) and their bodies (``tables/supervoxels``).

Output ``tables/synapse_candidates``: synapse_id (``cxgraph.ids.synapse_id``: block +
a local id hashed from what the synapse is, ``_local_id``), pre_sv, post_sv, pre_body,
post_body, pre_z/y/x, post_z/y/x (voxels), confidence, size, block. L4 quality per
block: ``synapses``, ``confidence_mean``, ``confidence_p10``, ``unassigned_fraction``
(a partner on no body, or both on one: an autapse), ``autapses``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from cxgraph.errors import ConfigError
from cxgraph.ids import MAX_LOCAL, synapse_id
from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, StageContext
from pipeline.segment.agglomeration import BodyLookup
from pipeline.synapses.detect import candidates
from pipeline.synapses.partners import assign, assign_by_mask
from pipeline.synapses.predict_stage import DIR_UNITS


@dataclasses.dataclass(frozen=True)
class SynapseParams(Params):
    """L4 synapse extraction."""

    threshold: float = 0.7  # post probability above which voxels form a candidate
    # smaller candidates, and synapses with fewer votes, are dropped (a PSD zone is ~2000;
    # 400, not 200: fewer duplicates where the pipeline's segmentation splits a partner)
    min_voxels: int = 400
    min_confidence: float = 0.9  # candidates whose peak probability is lower are dropped
    context: tuple[int, int, int] = (4, 32, 32)  # read margin: covers the direction's reach
    min_share: float = 0.15  # a partner needs this share of a candidate's weight ...
    min_votes: int = 50  # ... and this many of its voxels (partners.py)
    # a candidate is split at probability peaks this far apart (voxels z, y, x; ~a PSD);
    # (0, 0, 0): never split
    peak_radius: tuple[int, int, int] = (1, 10, 10)
    # which bodies a synapse joins (partners.py): "mask", the two bodies under most of
    # its probability, or "direction", where its voxels' predicted directions land
    partners: str = "mask"

    def __post_init__(self) -> None:
        if self.partners not in ("mask", "direction"):
            raise ConfigError(f"synapses.partners: expected 'mask' or 'direction', got "
                              f"{self.partners!r}")


def context(params: SynapseParams) -> tuple[int, int, int]:
    return params.context


def prepare(ctx: StageContext) -> BodyLookup:
    return BodyLookup.from_table(ctx.read_table("supervoxels"))


def grid(ctx: StageContext, plan: BodyLookup) -> BlockGrid:
    return BlockGrid(tuple(ctx.input_array("synapse_post").shape),
                     ctx.ws.config["blocks"].block_shape, context(ctx.params))


def synapses_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    p: SynapseParams = ctx.params
    bodies: BodyLookup = ctx.plan
    roi = block.read_roi
    prob = ctx.read("synapse_post", roi).astype(np.float32) / 255.0
    direction = ctx.read("synapse_dir", roi).astype(np.float32) / DIR_UNITS
    svs = ctx.read("supervoxels", roi)
    lo, hi = np.array(block.write_roi.begin), np.array(block.write_roi.end)
    origin = np.array(roi.begin)

    def owned(post: np.ndarray) -> bool:  # a synapse on a block face is counted once
        return bool(np.all(post + origin >= lo) and np.all(post + origin < hi))

    rows = extract(prob, direction, svs, bodies, p, owned, origin)
    rows.sort(key=lambda r: (r["post_z"], r["post_y"], r["post_x"]))
    if rows:
        pre_b = bodies(np.array([r["pre_sv"] for r in rows], np.uint64))
        post_b = bodies(np.array([r["post_sv"] for r in rows], np.uint64))
        taken: set[int] = set()
        for k, r in enumerate(rows):
            r.update(synapse_id=synapse_id(block.index, _local_id(r, taken)),
                     pre_body=int(pre_b[k]), post_body=int(post_b[k]))
    ctx.rows("synapse_candidates", block, rows)
    conf = np.array([r["confidence"] for r in rows])
    autapse = sum(1 for r in rows if r["pre_body"] == r["post_body"] != 0)
    unassigned = sum(1 for r in rows if 0 in (r["pre_body"], r["post_body"])) + autapse
    return [{"metric": "synapses", "value": float(len(rows))},
            {"metric": "confidence_mean", "value": float(conf.mean()) if len(rows) else None},
            {"metric": "confidence_p10",
             "value": float(np.percentile(conf, 10)) if len(rows) else None},
            {"metric": "unassigned_fraction",
             "value": unassigned / len(rows) if rows else 0.0},
            {"metric": "autapses", "value": float(autapse)}]


def extract(prob: np.ndarray, direction: np.ndarray, svs: np.ndarray, bodies: BodyLookup,
            p: SynapseParams, owned=None, origin=(0, 0, 0)) -> list[dict[str, Any]]:
    """Synapse rows (supervoxels, points + ``origin``, confidence, size) of predictions in
    one array frame: candidates (``detect.candidates``) above the thresholds, their
    partners (``partners.py``, as ``p.partners`` says), one synapse per partner pair of a
    mask component, those whose post point ``owned`` accepts. Ownership is decided on
    each synapse's own post point, the one reported: a candidate across a block face can
    peak on one side and put its synapse on the other."""
    pieces = [(c["component"], syn)
              for c in candidates(prob, direction, p.threshold, p.min_voxels, p.peak_radius)
              if c["confidence"] >= p.min_confidence
              for syn in (assign(c, direction, svs, bodies, p.min_share, p.min_votes)
                          if p.partners == "direction" else
                          assign_by_mask(c, svs, bodies, p.min_share, p.min_votes))]
    rows = []
    for syn in _one_per_partner_pair(pieces, bodies, p.min_voxels):
        if owned is not None and not owned(syn["post"]):
            continue
        pre, post = syn["pre"] + origin, syn["post"] + origin
        rows.append({"pre_sv": syn["pre_sv"], "post_sv": syn["post_sv"],
                     "pre_z": float(pre[0]), "pre_y": float(pre[1]), "pre_x": float(pre[2]),
                     "post_z": float(post[0]), "post_y": float(post[1]),
                     "post_x": float(post[2]), "confidence": syn["confidence"],
                     "size": syn["size"]})
    return rows


def _one_per_partner_pair(pieces: list[tuple[int, dict[str, Any]]], bodies: BodyLookup,
                          min_voxels: int = 0) -> list[dict[str, Any]]:
    """The peaks of one synapse agree on its partners: the synapses of one mask component
    (``(component, synapse)`` pairs) between the same two bodies are one, with the points
    and direction of the heaviest (the mask spills over the cleft: the side with more
    votes is post, as in ``partners.assign``) and their summed size, kept if that is at
    least ``min_voxels``. A partnerless one counts only while its component has no
    partnered synapse (the orphan for the proofreading list)."""
    best: dict[tuple[int, int, int], dict[str, Any]] = {}
    for comp, syn in pieces:
        pair = sorted(int(b) for b in bodies(np.array([syn["pre_sv"], syn["post_sv"]],
                                                      np.uint64)))
        key = (comp, *pair) if syn["pre_sv"] else (comp, 0, 0)
        seen = best.get(key)
        if seen is None:
            best[key] = dict(syn)
        elif syn["size"] > seen["size"]:
            best[key] = {**syn, "size": syn["size"] + seen["size"]}
        else:
            seen["size"] += syn["size"]
    kept = {key: syn for key, syn in best.items() if key[1] == 0 or syn["size"] >= min_voxels}
    partnered = {comp for comp, lo, _ in kept if lo}
    return [syn for (comp, lo, _), syn in sorted(kept.items()) if lo or comp not in partnered]


def _local_id(row: dict[str, Any], taken: set[int]) -> int:
    """A synapse's local id names what it is (its post voxel and its two supervoxels), as
    a body id names its supervoxels: a re-run that finds the same synapse keeps its id,
    and a changed one gets a new id instead of taking over the number of another
    (ids are never reused for something else). Collisions in a block move to the next
    free number, in the rows' (sorted, deterministic) order."""
    key = (f"{row['post_z']:.0f},{row['post_y']:.0f},{row['post_x']:.0f},"
           f"{row['pre_sv']},{row['post_sv']}")
    local = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % MAX_LOCAL + 1
    while local in taken:
        local = local % MAX_LOCAL + 1
    taken.add(local)
    return local


COLUMNS = {"synapse_id": "int64", "pre_sv": "int64", "post_sv": "int64", "pre_body": "int64",
           "post_body": "int64", "pre_z": "float64", "pre_y": "float64", "pre_x": "float64",
           "post_z": "float64", "post_y": "float64", "post_x": "float64",
           "confidence": "float64", "size": "int64", "block": "int64"}


def finalize(ctx: StageContext, plan: BodyLookup) -> None:
    """A volume without a single synapse still gets its (empty) table."""
    import pyarrow as pa

    if ctx.block_table("synapse_candidates") is None:
        ctx.write_table("synapse_candidates", pa.table(
            {c: pa.array([], type=getattr(pa, t)()) for c, t in COLUMNS.items()}))
