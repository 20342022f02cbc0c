// Which synapses does this body have? Written as neuPrint clients do
// (Neuron -> SynapseSet -> Synapse, partner through SynapsesTo), for comparison;
// it has no notion of versions, so it is right only on an unversioned graph.
//
// $bodyId: int - the body
// $minConfidence: float = 0.0 - smallest synapse confidence returned
// $limit: int = 100000 - most rows returned
MATCH (n:Segment {bodyId: $bodyId})-[:Contains]->(:SynapseSet)-[:Contains]->(s:Synapse)
WHERE s.confidence >= $minConfidence
MATCH (s)-[:SynapsesTo]-(:Synapse)<-[:Contains]-(:SynapseSet)<-[:Contains]-(partner:Segment)
RETURN s.synapseId AS synapseId, s.type AS type, s.location AS location,
       s.confidence AS confidence, partner.bodyId AS partner
ORDER BY synapseId, type
LIMIT $limit
