// Which agglomeration merges joined these two supervoxels into one body (at a version)?
// The merges of a body form a tree over its supervoxels; the path between the two
// supervoxels lists every merge they needed. `weakest` is the merge with the lowest
// affinity on that path (the first suspect of a merge error); `joining` is the last
// merge by step (the one that made them one body). No row: never in one body.
//
// $svA: int - one supervoxel
// $svB: int - the other supervoxel
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 2^62) AS v
MATCH (a:Supervoxel {svId: $svA}), (b:Supervoxel {svId: $svB})
MATCH path = shortestPath((a)-[:MergedWith*..1000]-(b))
WHERE all(m IN relationships(path)
          WHERE m.validFrom <= v AND (m.validTo IS NULL OR m.validTo > v))
WITH path, [m IN relationships(path) | {
       svA: startNode(m).svId, svB: endNode(m).svId, affinity: m.affinity, step: m.step,
       block: m.block, stageRun: m.stageRun, operationId: m.operationId}] AS merges
RETURN merges,
       reduce(w = head(merges), m IN merges | CASE WHEN m.affinity < w.affinity THEN m ELSE w END)
         AS weakest,
       reduce(j = head(merges), m IN merges | CASE WHEN m.step > j.step THEN m ELSE j END)
         AS joining,
       length(path) AS hops
