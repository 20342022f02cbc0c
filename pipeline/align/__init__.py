"""L2 align: ``stitch`` (tiles -> section mosaics, ``raw``) and ``align`` (sections registered
to each other without accumulating drift -> ``aligned``), with residuals and fault flags."""

from pipeline import registry
from pipeline.align import align_stage, stitch_stage
from pipeline.align.params import AlignParams, StitchParams
from pipeline.engine import Stage, array, table

STITCH = registry.register(Stage(
    name="stitch", layer="L2", params=StitchParams,
    inputs=(array("tiles"), table("tiles")),
    outputs=(array("raw"), table("tile_positions"), table("stitch_edges")),
    prepare=stitch_stage.prepare, grid=stitch_stage.grid,
    process_block=stitch_stage.stitch_block,
    description="tiles -> tile positions and section mosaics (raw)",
))

ALIGN = registry.register(Stage(
    name="align", layer="L2", params=AlignParams,
    inputs=(array("tiles"), table("tiles"), array("raw"), table("tile_positions")),
    outputs=(array("aligned"), table("section_transforms"), table("align_pairs"),
             table("align_field")),
    prepare=align_stage.prepare, grid=align_stage.grid, process_block=align_stage.render_block,
    description="sections registered (translations + local fields) -> aligned volume",
))
