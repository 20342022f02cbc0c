"""L3 segment: aligned EM -> affinities (U-Net) -> supervoxels (watershed) -> bodies
(agglomeration with its merge history) -> a segmentation volume."""

from pipeline import registry
from pipeline.engine import Stage, array, table
from pipeline.segment import (
    affinities_stage,
    agglomerate_stage,
    segmentation_stage,
    smooth,
    supervoxels_stage,
)

registry.register(smooth.STAGE)

AFFINITIES = registry.register(Stage(
    name="affinities", layer="L3", params=affinities_stage.AffinityParams,
    inputs=(array("aligned"),), outputs=(array("affinities"),),
    prepare=affinities_stage.prepare, grid=affinities_stage.grid,
    process_block=affinities_stage.affinities_block, context=affinities_stage.context,
    model=affinities_stage.model_path, resources=frozenset({"gpu"}),
    regional_params=frozenset({"normalise", "tta", "baseline_sigma_px", "baseline_width"}),
    description="aligned EM -> nearest-neighbour affinities (3D U-Net)",
))

SUPERVOXELS = registry.register(Stage(
    name="supervoxels", layer="L3", params=supervoxels_stage.SupervoxelParams,
    inputs=(array("affinities"),), outputs=(array("supervoxels"), table("fragments")),
    prepare=supervoxels_stage.prepare, grid=supervoxels_stage.grid,
    process_block=supervoxels_stage.supervoxels_block,
    regional_params=frozenset({"boundary_threshold", "seed_distance_px", "min_seed_px"}),
    description="affinities -> supervoxels (watershed per section, block-encoded ids)",
))

AGGLOMERATE = registry.register(Stage(
    name="agglomerate", layer="L3", params=agglomerate_stage.AgglomerateParams,
    inputs=(array("affinities"), array("supervoxels"), table("fragments")),
    outputs=(table("agglomeration_edges"), table("agglomeration"), table("supervoxels"),
             table("bodies")),
    grid=agglomerate_stage.grid, process_block=agglomerate_stage.agglomerate_block,
    finalize=agglomerate_stage.finalize, context=agglomerate_stage.context,
    # (finalize cuts each edge at the threshold its block wrote into the edge table)
    regional_params=frozenset({"threshold", "scoring"}),
    description="supervoxels -> bodies (waterz mean affinity, one merge forest)",
))

SEGMENTATION = registry.register(Stage(
    name="segmentation", layer="L3", params=segmentation_stage.SegmentationParams,
    inputs=(array("supervoxels"), table("supervoxels")), outputs=(array("segmentation"),),
    prepare=segmentation_stage.prepare, grid=segmentation_stage.grid,
    process_block=segmentation_stage.segmentation_block, widen=segmentation_stage.widen,
    description="supervoxels + bodies -> body id per voxel",
))
