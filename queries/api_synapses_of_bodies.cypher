// Which synapses do these bodies have, and who is on the other side? (batched, paged)
// One row per synapse side, each body's ordered by (synapseId, type), at most $first each.
//
// $ids: list<int> - bodyIds
// $minConfidence: float = 0.0 - smallest confidence kept
// $afterId: int? = null - synapseId of the last row of the previous page (null: first page)
// $afterType: str? = null - type ('pre'/'post') of the last row of the previous page
// $first: int = 100 - most synapses per body
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
UNWIND $ids AS id
MATCH (b:Segment {bodyId: id})
CALL (b, v) {
  MATCH (b)-[:Contains]->(:SynapseSet)-[c:Contains]->(s:Synapse)
  WHERE c.validFrom <= v AND (c.validTo IS NULL OR c.validTo > v)
    AND s.confidence >= $minConfidence
    AND ($afterId IS NULL OR s.synapseId > $afterId
         OR (s.synapseId = $afterId AND s.type > $afterType))
  RETURN s ORDER BY s.synapseId, s.type LIMIT $first
}
OPTIONAL MATCH (s)-[:SynapsesTo]-(:Synapse)<-[ct:Contains]-(:SynapseSet)<-[:Contains]-(pb:Segment)
WHERE ct.validFrom <= v AND (ct.validTo IS NULL OR ct.validTo > v)
WITH id, s, collect(DISTINCT pb.bodyId) AS partners
RETURN id, s {.*} AS s, id AS bodyId, partners
ORDER BY id, s.synapseId, s.type
