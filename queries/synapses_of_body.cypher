// Which synapses does this body have (at a version), where, and who is on the other side?
// Works for any version: body -> SynapseSet -> Synapse with the membership interval.
//
// $bodyId: int - the body
// $minConfidence: float = 0.0 - smallest synapse confidence returned
// $asOf: int? = null - version to answer for (null: the current version)
// $limit: int = 100000 - most rows returned
WITH coalesce($asOf, 2^62) AS v
MATCH (b:Segment {bodyId: $bodyId})-[:Contains]->(:SynapseSet)-[c:Contains]->(s:Synapse)
WHERE c.validFrom <= v AND (c.validTo IS NULL OR c.validTo > v)
  AND s.confidence >= $minConfidence
MATCH (s)-[:SynapsesTo]-(o:Synapse)<-[c2:Contains]-(:SynapseSet)<-[:Contains]-(partner:Segment)
WHERE c2.validFrom <= v AND (c2.validTo IS NULL OR c2.validTo > v)
RETURN s.synapseId AS synapseId, s.type AS type, s.location AS location,
       s.confidence AS confidence, partner.bodyId AS partner
ORDER BY synapseId, type
LIMIT $limit
