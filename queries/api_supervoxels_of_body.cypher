// Supervoxels of a body (all that were ever part of it; bodies are immutable), by svId: a page.
// Parameters:
//   $bodyId   the body
//   $after    svId of the last supervoxel of the previous page, or null
//   $first    page size
MATCH (sv:Supervoxel)-[:PartOf]->(:Segment {bodyId: $bodyId})
WHERE $after IS NULL OR sv.svId > $after
RETURN sv {.*} AS sv
ORDER BY sv.svId
LIMIT $first
