// 005: a synapse's body in the latest version (Synapse.bodyId, as neuPrint), for the
// current-version fast path (queries/synapses_of_body_current.cypher).
CREATE INDEX synapse_body_id IF NOT EXISTS
FOR (s:Synapse) ON (s.bodyId);
