// Which supervoxels make up this body? One page, by svId (bodies are immutable, so these
// are all the supervoxels it ever had).
//
// $bodyId: int - the body
// $after: int? = null - svId of the last supervoxel of the previous page (null: first page)
// $first: int = 100 - page size
MATCH (sv:Supervoxel)-[:PartOf]->(:Segment {bodyId: $bodyId})
WHERE $after IS NULL OR sv.svId > $after
RETURN sv {.*} AS sv
ORDER BY sv.svId
LIMIT $first
