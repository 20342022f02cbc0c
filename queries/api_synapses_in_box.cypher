// Which synapses lie inside a box, on which bodies? One page, ordered by (synapseId, type).
// The box is lo <= location < hi in voxels; points are (x, y, z) (cxgraph/graph/coords.py).
//
// $lo: point - lower corner (inclusive)
// $hi: point - upper corner (exclusive)
// $minConfidence: float = 0.0 - smallest confidence kept
// $afterId: int? = null - synapseId of the last row of the previous page (null: first page)
// $afterType: str? = null - type ('pre'/'post') of the last row of the previous page
// $first: int = 100 - page size
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
MATCH (s:Synapse)
WHERE point.withinBBox(s.location, $lo, $hi)
  AND s.location.x < $hi.x AND s.location.y < $hi.y AND s.location.z < $hi.z
  AND s.validFrom <= v AND (s.validTo IS NULL OR s.validTo > v)
  AND s.confidence >= $minConfidence
  AND ($afterId IS NULL OR s.synapseId > $afterId
       OR (s.synapseId = $afterId AND s.type > $afterType))
WITH v, s ORDER BY s.synapseId, s.type LIMIT $first
OPTIONAL MATCH (s)<-[c:Contains]-(:SynapseSet)<-[:Contains]-(b:Segment)
WHERE c.validFrom <= v AND (c.validTo IS NULL OR c.validTo > v)
WITH v, s, head(collect(b.bodyId)) AS bodyId
OPTIONAL MATCH (s)-[:SynapsesTo]-(:Synapse)<-[ct:Contains]-(:SynapseSet)<-[:Contains]-(pb:Segment)
WHERE ct.validFrom <= v AND (ct.validTo IS NULL OR ct.validTo > v)
WITH s, bodyId, collect(DISTINCT pb.bodyId) AS partners
RETURN s {.*} AS s, bodyId, partners
ORDER BY s.synapseId, s.type
