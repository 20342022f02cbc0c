// Which synapses does this body have now? The fast path for the current version:
// an index lookup on Synapse.bodyId (the body in the latest version), no traversal.
//
// $bodyId: int - the body (a current one; use synapses_of_body for older versions)
// $minConfidence: float = 0.0 - smallest synapse confidence returned
// $limit: int = 100000 - most rows returned
MATCH (s:Synapse {bodyId: $bodyId})
WHERE s.validTo IS NULL AND s.confidence >= $minConfidence
MATCH (s)-[:SynapsesTo]-(o:Synapse)
RETURN s.synapseId AS synapseId, s.type AS type, s.location AS location,
       s.confidence AS confidence, o.bodyId AS partner
ORDER BY synapseId, type
LIMIT $limit
