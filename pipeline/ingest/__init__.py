"""L1 ingest: microscope tiles in (``manifest.py``: the tile format), checked, flat-fielded
and normalised tiles out, with image quality per tile and section."""

from pipeline import registry
from pipeline.engine import Stage, array, source, table
from pipeline.ingest import stage
from pipeline.ingest.params import IngestParams

STAGE = registry.register(Stage(
    name="ingest", layer="L1", params=IngestParams,
    inputs=(source("tile_dir"),),
    outputs=(array("tiles"), array("flatfield"), table("tiles")),
    prepare=stage.prepare, grid=stage.grid, process_block=stage.ingest_block,
    description="tiles -> checked, flat-fielded, normalised tiles + L1 quality",
))
