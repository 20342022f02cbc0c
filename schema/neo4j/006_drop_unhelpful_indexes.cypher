// 006: drop indexes that cost every write but help no query. A range index does not
// hold nulls, so `validTo IS NULL` (the "current" test) cannot use the validTo
// indexes; synapse queries start from a body, a block or a point, never from a
// confidence value. Measured: each index on :Synapse costs ~10% of Bolt write speed.
DROP INDEX synapse_valid_to IF EXISTS;

DROP INDEX segment_valid_to IF EXISTS;

DROP INDEX supervoxel_valid_to IF EXISTS;

DROP INDEX connects_to_valid_to IF EXISTS;

DROP INDEX synapse_confidence IF EXISTS;
