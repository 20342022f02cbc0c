// 004: provenance links and space.
//   (:StageRun {stageRunId, stage, layer})  - joins the provenance tables (provenance.duckdb)
//   (:Block {blockId, writeBox, readBox})    - boxes are [z0, y0, x0, z1, y1, x1] voxels, end exclusive
//   (:Region {name, box, flags, reason})     - box as for Block
//   (:Version)-[:FromStageRun]->(:StageRun)  (:Operation)-[:InStageRun]->(:StageRun)
// Bodies, synapses and supervoxels name their producer by the properties
// `stageRun` (string) and `block` (int), indexed below, instead of one
// relationship per object (which would double the relationship count of the
// largest label for no query benefit).
CREATE CONSTRAINT stage_run_id IF NOT EXISTS
FOR (r:StageRun) REQUIRE r.stageRunId IS UNIQUE;

CREATE CONSTRAINT block_id IF NOT EXISTS
FOR (b:Block) REQUIRE b.blockId IS UNIQUE;

CREATE CONSTRAINT region_name IF NOT EXISTS
FOR (r:Region) REQUIRE r.name IS UNIQUE;

CREATE INDEX segment_stage_run IF NOT EXISTS
FOR (s:Segment) ON (s.stageRun);

CREATE INDEX synapse_stage_run IF NOT EXISTS
FOR (s:Synapse) ON (s.stageRun);

CREATE INDEX synapse_block IF NOT EXISTS
FOR (s:Synapse) ON (s.block);

CREATE INDEX supervoxel_stage_run IF NOT EXISTS
FOR (s:Supervoxel) ON (s.stageRun);

CREATE INDEX supervoxel_block IF NOT EXISTS
FOR (s:Supervoxel) ON (s.block);

CREATE INDEX operation_stage_run IF NOT EXISTS
FOR (o:Operation) ON (o.stageRun);
