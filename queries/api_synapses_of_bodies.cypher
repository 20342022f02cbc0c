// Synapses of many bodies at a version, each body's ordered by (synapseId, type), with the
// bodies on the other side of each synapse. One row per synapse side.
// Parameters:
//   $ids                 list of bodyIds
//   $minConfidence       smallest confidence kept
//   $afterId, $afterType (synapseId, type) of the last row of the previous page, or null
//   $first               most synapses per body
//   $version             version number; above Meta.currentVersion (e.g. 2^62) means "now"
UNWIND $ids AS id
MATCH (b:Segment {bodyId: id})
CALL (b) {
  MATCH (b)-[:Contains]->(:SynapseSet)-[c:Contains]->(s:Synapse)
  WHERE c.validFrom <= $version AND (c.validTo IS NULL OR c.validTo > $version)
    AND s.confidence >= $minConfidence
    AND ($afterId IS NULL OR s.synapseId > $afterId
         OR (s.synapseId = $afterId AND s.type > $afterType))
  RETURN s ORDER BY s.synapseId, s.type LIMIT $first
}
OPTIONAL MATCH (s)-[:SynapsesTo]-(t:Synapse)<-[ct:Contains]-(:SynapseSet)<-[:Contains]-(pb:Segment)
WHERE ct.validFrom <= $version AND (ct.validTo IS NULL OR ct.validTo > $version)
WITH id, s, collect(DISTINCT pb.bodyId) AS partners
RETURN id, s {.*} AS s, id AS bodyId, partners
ORDER BY s.synapseId, s.type
