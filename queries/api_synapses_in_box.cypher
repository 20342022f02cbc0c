// Synapses inside a box at a version (point index), ordered by (synapseId, type), one page,
// with the body of each side and the bodies on the other side.
// Parameters:
//   $lo, $hi             corner points (x, y, z voxels); the box is lo <= location < hi
//   $minConfidence       smallest confidence kept
//   $afterId, $afterType (synapseId, type) of the last row of the previous page, or null
//   $first               page size
//   $version             version number; above Meta.currentVersion (e.g. 2^62) means "now"
MATCH (s:Synapse)
WHERE point.withinBBox(s.location, $lo, $hi)
  AND s.location.x < $hi.x AND s.location.y < $hi.y AND s.location.z < $hi.z
  AND s.validFrom <= $version AND (s.validTo IS NULL OR s.validTo > $version)
  AND s.confidence >= $minConfidence
  AND ($afterId IS NULL OR s.synapseId > $afterId
       OR (s.synapseId = $afterId AND s.type > $afterType))
WITH s ORDER BY s.synapseId, s.type LIMIT $first
OPTIONAL MATCH (s)<-[c:Contains]-(:SynapseSet)<-[:Contains]-(b:Segment)
WHERE c.validFrom <= $version AND (c.validTo IS NULL OR c.validTo > $version)
WITH s, head(collect(b.bodyId)) AS bodyId
OPTIONAL MATCH (s)-[:SynapsesTo]-(t:Synapse)<-[ct:Contains]-(:SynapseSet)<-[:Contains]-(pb:Segment)
WHERE ct.validFrom <= $version AND (ct.validTo IS NULL OR ct.validTo > $version)
WITH s, bodyId, collect(DISTINCT pb.bodyId) AS partners
RETURN s {.*} AS s, bodyId, partners
ORDER BY s.synapseId, s.type
