"""What each recorded quality metric means for the traceback.

``worse`` is the direction in which a metric says processing went wrong: "lower",
"higher", or "either" for a segmentation count that splits push one way and merges the
other (``MERGE_SIGN`` says which). A metric without one describes content (how many
synapses a block holds, its mean grey): it is shown but never makes a layer anomalous,
so fewer synapses alone is a finding about the graph, not a processing fault. Metrics
not listed here are shown as descriptive: a new stage's figures appear in reports
before anyone classifies them.
"""

from __future__ import annotations

LAYERS = {"L5": "graph", "L4": "synapses", "L3": "segmentation", "L2": "alignment",
          "L1": "images"}

# (layer, metric) -> (worse, what it indicates)
CATALOG: dict[tuple[str, str], tuple[str | None, str]] = {
    # L5: what analysts see; "differs" rather than "anomalous"
    ("L5", "synapses"): (None, "post synaptic sites per block"),
    ("L5", "connections"): (None, "distinct pre->post body pairs per block"),
    ("L5", "bodies"): (None, "distinct bodies with a synapse per block"),
    ("L5", "connections_per_neuron"): (None, "pairs per distinct body"),
    # L4
    ("L4", "confidence_mean"): ("lower", "mean detection confidence"),
    ("L4", "confidence_p10"): ("lower", "10th percentile of detection confidence"),
    ("L4", "unassigned_fraction"): ("higher", "synapses without a partner body, or autapses"),
    ("L4", "autapses"): ("higher", "pre and post on the same body (a merge error)"),
    ("L4", "suspected_errors"): ("higher", "refinement's suspected split/merge sites"),
    ("L4", "synapses"): (None, "detected synapse candidates per block"),
    ("L4", "synapse_mask_fraction"): (None, "voxels the network calls synaptic"),
    # L3
    ("L3", "affinity_confidence"): ("lower", "mean |2a - 1| of the affinities"),
    ("L3", "affinity_ambiguous_fraction"): ("higher", "xy affinities between 0.2 and 0.8"),
    ("L3", "edge_score_ambiguous_fraction"): ("higher", "merge scores between 0.3 and 0.7"),
    ("L3", "supervoxels_per_body"): ("either", "fragments per body (high: merges)"),
    ("L3", "single_supervoxel_bodies"): ("higher", "bodies of one fragment (split indicator)"),
    ("L3", "bodies_ending_inside"): ("higher", "bodies ending inside the volume (splits)"),
    ("L3", "bodies"): ("either", "bodies per block (more: splits, fewer: merges)"),
    ("L3", "bodies_in_block"): ("either", "labels per block (more: splits)"),
    ("L3", "small_fragments"): ("higher", "fragments under the size floor"),
    ("L3", "fragments"): (None, "watershed fragments per block"),
    ("L3", "fragment_size_median"): (None, "median fragment size"),
    ("L3", "boundary_fraction"): (None, "voxels on a boundary"),
    ("L3", "edges"): (None, "candidate merges"),
    ("L3", "merges"): (None, "merges taken"),
    ("L3", "merges_per_edge"): ("either", "fraction of candidate merges taken (high: merges)"),
    # L2
    ("L2", "residual_mean_px"): ("higher", "registration residual, mean"),
    ("L2", "residual_p95_px"): ("higher", "registration residual, 95th percentile"),
    ("L2", "residual_max_px"): ("higher", "registration residual, max"),
    ("L2", "pair_residual_max_px"): ("higher", "worst residual to a neighbour section"),
    ("L2", "alignment_fault"): ("higher", "section flagged as an alignment fault"),
    ("L2", "alignment_failed"): ("higher", "section the solver could not place"),
    ("L2", "jump_px"): ("higher", "jump against the neighbours"),
    ("L2", "match_ncc_mean"): ("lower", "block-match correlation"),
    ("L2", "matches_rejected"): ("higher", "matches dropped as outliers"),
    ("L2", "stitch_residual_mean_px"): ("higher", "tile stitching residual, mean"),
    ("L2", "stitch_residual_max_px"): ("higher", "tile stitching residual, max"),
    ("L2", "stitch_ncc_mean"): ("lower", "tile overlap correlation"),
    ("L2", "stitch_tiles_unplaced"): ("higher", "tiles the stitcher could not place"),
    ("L2", "drift_px"): (None, "accumulated drift (grows with z by nature)"),
    ("L2", "drift_y_px"): (None, "accumulated drift, y"),
    ("L2", "drift_x_px"): (None, "accumulated drift, x"),
    # L1
    ("L1", "membrane_contrast"): ("lower", "membrane vs cytoplasm grey contrast"),
    ("L1", "snr"): ("lower", "signal-to-noise ratio"),
    ("L1", "saturated_fraction"): ("higher", "saturated pixels"),
    ("L1", "tile_bad"): ("higher", "unreadable or rejected tile"),
    ("L1", "tiles_bad"): ("higher", "bad tiles in the section"),
    ("L1", "section_missing"): ("higher", "section not imaged"),
    ("L1", "mean_intensity"): (None, "mean grey"),
}

# For "either" metrics: +1 when a higher value means merge errors, -1 when lower does.
MERGE_SIGN = {("L3", "supervoxels_per_body"): 1, ("L3", "bodies"): -1,
              ("L3", "bodies_in_block"): -1, ("L3", "merges_per_edge"): 1}

# The parameter to change when a layer is the root cause, by the metric that named it.
# (from-stage, [--set ...], why)
REMEDIES: dict[tuple[str, str], tuple[str, list[str], str]] = {
    # faint membranes give weak boundaries that agglomeration merges across (measured on
    # the demo's staining corner: merge VOI 2.57 -> 1.39 at 0.2 instead of 0.4, BENCHMARKS.md)
    ("L1", "membrane_contrast"): (
        "agglomerate", ["agglomerate.threshold={lower}"],
        "faint membranes make weak boundaries that agglomeration merges across: merge less "
        "readily in the region"),
    ("L1", "*"): ("affinities", ["affinities.normalise=block",
                                 "synapse_prediction.normalise=block"],
                  "standardise the grey levels per block, so the networks see the region at "
                  "the contrast they were trained on"),
    ("L2", "*"): ("align", ["align.neighbours=4"],
                  "register each section against more neighbours, so one bad pair is outvoted"),
    ("L3", "merge"): ("agglomerate", ["agglomerate.threshold={lower}"],
                      "merge less readily where boundaries are faint (the region's bodies "
                      "are merged)"),
    ("L3", "split"): ("agglomerate", ["agglomerate.threshold={higher}"],
                      "merge more readily where boundaries are ambiguous (the region's "
                      "bodies are split)"),
    ("L4", "*"): ("synapses", [], "re-extract synapses (check the detection threshold)"),
}


def worse(layer: str, metric: str) -> str | None:
    return CATALOG.get((layer, metric), (None, ""))[0]


def describe(layer: str, metric: str) -> str:
    return CATALOG.get((layer, metric), (None, "recorded by the stage"))[1]


def remedy(key: tuple[str, str]) -> tuple[str, list[str], str] | None:
    return REMEDIES.get(key) or REMEDIES.get((key[0], "*"))
