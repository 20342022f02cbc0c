// Which agglomeration merges joined this body's supervoxels, weakest first? One page.
// The merges of a body form a tree over its supervoxels; the weakest (lowest affinity)
// edges are the first suspects of a false merge.
//
// $bodyId: int - the body
// $afterAffinity: float? = null - affinity of the previous page's last row (null: first page)
// $afterA: int? = null - sv_a of the previous page's last row
// $afterB: int? = null - sv_b of the previous page's last row
// $first: int = 100 - page size
MATCH (a:Supervoxel)-[:PartOf]->(body:Segment {bodyId: $bodyId})
MATCH (a)-[m:MergedWith]->(b:Supervoxel)-[:PartOf]->(body)
WITH a.svId AS a, b.svId AS b, m, coalesce(m.affinity, 0.0) AS aff
WHERE $afterA IS NULL OR aff > $afterAffinity
   OR (aff = $afterAffinity AND (a > $afterA OR (a = $afterA AND b > $afterB)))
RETURN a, b, m {.*} AS m, aff
ORDER BY aff, a, b
LIMIT $first
