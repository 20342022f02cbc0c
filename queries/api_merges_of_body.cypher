// Agglomeration merges among a body's supervoxels, weakest (lowest affinity) first: a page.
// The merges of a body form a tree over its supervoxels; its weakest edges are the first
// suspects of a false merge.
// Parameters:
//   $bodyId                  the body
//   $afterAffinity, $afterA, $afterB  sort key (affinity, a, b) of the previous page's last
//                            row, or null
//   $first                   page size
MATCH (a:Supervoxel)-[:PartOf]->(body:Segment {bodyId: $bodyId})
MATCH (a)-[m:MergedWith]->(b:Supervoxel)-[:PartOf]->(body)
WITH a.svId AS a, b.svId AS b, m, coalesce(m.affinity, 0.0) AS aff
WHERE $afterA IS NULL OR aff > $afterAffinity
   OR (aff = $afterAffinity AND (a > $afterA OR (a = $afterA AND b > $afterB)))
RETURN a, b, m {.*} AS m, aff
ORDER BY aff, a, b
LIMIT $first
