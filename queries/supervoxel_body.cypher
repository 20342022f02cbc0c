// Which body did this supervoxel belong to at a version?
//
// $svId: int - the supervoxel
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 2^62) AS v
MATCH (:Supervoxel {svId: $svId})-[p:PartOf]->(b:Segment)
WHERE p.validFrom <= v AND (p.validTo IS NULL OR p.validTo > v)
RETURN b.bodyId AS bodyId, p.validFrom AS validFrom, p.validTo AS validTo
