"""L4 synapses: the synapse network, synapses with their pre/post partners, and the
refinement (safe merges, the connectome, a proofreading priority list)."""

from pipeline import registry
from pipeline.engine import Stage, array, table
from pipeline.synapses import extract_stage, predict_stage, refine_stage

PREDICTION = registry.register(Stage(
    name="synapse_prediction", layer="L4", params=predict_stage.SynapsePredictionParams,
    inputs=(array("aligned"),), outputs=(array("synapse_post"), array("synapse_dir")),
    prepare=predict_stage.prepare, grid=predict_stage.grid,
    process_block=predict_stage.synapse_block, context=predict_stage.context,
    model=predict_stage.model_path, resources=frozenset({"gpu"}),
    regional_params=frozenset({"normalise", "baseline_darkness", "baseline_reach_px"}),
    description="aligned EM -> postsynaptic mask + direction to the partner (U-Net)",
))

SYNAPSES = registry.register(Stage(
    name="synapses", layer="L4", params=extract_stage.SynapseParams,
    inputs=(array("synapse_post"), array("synapse_dir"), array("supervoxels"),
            table("supervoxels")),
    outputs=(table("synapse_candidates"),),
    prepare=extract_stage.prepare, grid=extract_stage.grid,
    process_block=extract_stage.synapses_block, finalize=extract_stage.finalize,
    context=extract_stage.context,
    regional_params=frozenset({"threshold", "min_voxels", "min_confidence", "min_share",
                               "min_votes", "peak_radius", "partners"}),
    description="predictions -> synapses with pre/post supervoxels and bodies",
))

REFINE = registry.register(Stage(
    name="refine", layer="L4", params=refine_stage.RefineParams,
    inputs=(table("synapse_candidates"), table("supervoxels"), table("agglomeration"),
            array("supervoxels")),
    outputs=(table("synapses"), table("connections"), table("operations"),
             table("proofreading")),
    finalize=refine_stage.finalize,
    description="safe merges, the connectome, the proofreading priority list",
))
