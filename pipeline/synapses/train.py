"""``cxgraph train synapses``: the synapse network's task for ``pipeline.segment.train``.

Same U-Net, same crops and augmentations as the affinity network (the truth volumes
are the rasterised synapses of ``detect.synapse_balls``); 4 output channels: the
postsynaptic mask (binary cross-entropy; positives weighted up to ``MAX_POS_WEIGHT``
times, they are rare) and the direction to the presynaptic partner (smooth L1, only
where the mask is set and the partner lies in the crop).

Half the crops are centred on a true post site or, a third of those, on a
mitochondrion (hard negatives). Training volumes are phantoms with boutons 3x denser
than the default, so that each crop holds synapses (``TRAINING_PRESET``).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.segment.train import Task, margin_mask
from pipeline.segment.training_data import Volume
from pipeline.synapses.detect import synapse_balls, targets

MAX_POS_WEIGHT = 20.0
TRAINING_PRESET = {"bouton_spacing_nm": 1000.0}
_balls: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _truths(vol: Volume) -> tuple[np.ndarray, np.ndarray]:
    if vol.name not in _balls:
        s = vol.synapses
        pre = np.stack([s["pre_z"].to_numpy(), s["pre_y"].to_numpy(), s["pre_x"].to_numpy()], 1)
        post = np.stack([s["post_z"].to_numpy(), s["post_y"].to_numpy(),
                         s["post_x"].to_numpy()], 1)
        post_ids, pre_ids = synapse_balls(vol.raw.shape, pre, post)
        if vol.clefts is not None:  # the post side of the rendered cleft: the PSD the net
            # can see, not a ball at a point inside it
            for k, (sid, post_body) in enumerate(zip(s["synapse_id"].to_list(),
                                                     s["post_id"].to_list(), strict=True)):
                psd = (vol.clefts == sid) & (vol.labels == post_body)
                post_ids[psd] = k + 1
        _balls[vol.name] = (post_ids, pre_ids)
    return _balls[vol.name]


def _targets(truths, margin):
    y, valid = targets(*truths)
    keep = margin_mask(y.shape[1:], margin)
    w = valid * keep
    pos = float((y[0] * w[0]).sum())
    neg = float(((1 - y[0]) * w[0]).sum())
    wpos = min(MAX_POS_WEIGHT, neg / pos) if pos else 1.0
    w[0] = w[0] * np.where(y[0] > 0.5, wpos, 1.0)
    return y, w


def _loss(logits, y, w):
    mask = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, :1], y[:, :1], reduction="none") * w[:, :1]
    direction = torch.nn.functional.smooth_l1_loss(
        logits[:, 1:], y[:, 1:], reduction="none", beta=0.1) * w[:, 1:]
    return mask.sum() / w[:, :1].sum().clamp(min=1.0) + \
        direction.sum() / w[:, 1:].sum().clamp(min=1.0)


_focus: dict[str, np.ndarray] = {}


def _posts_and_decoys(vol: Volume) -> np.ndarray:
    """Crop centres: every true post site, and mitochondria (dark, membrane-bound: the
    look-alike a network calls a synapse when it has seen too few) up to half as many."""
    if vol.name not in _focus:
        s = vol.synapses
        posts = np.stack([s["post_z"].to_numpy(), s["post_y"].to_numpy(),
                          s["post_x"].to_numpy()], 1).astype(float)
        decoys = np.zeros((0, 3))
        if vol.mito is not None and vol.mito.any():
            import cc3d

            stats = cc3d.statistics(cc3d.connected_components(vol.mito > 0))
            decoys = np.asarray(stats["centroids"][1:], float)
            decoys = decoys[np.isfinite(decoys).all(1)]
            step = max(1, -(-2 * len(decoys) // max(len(posts), 1)))
            decoys = decoys[::step]
        _focus[vol.name] = np.concatenate([posts, decoys])
    return _focus[vol.name]


SYNAPSES = Task("synapses", 4, _truths, _targets, _loss, focus=_posts_and_decoys)
