// Which synapses go from these bodies to those, with both sides' locations? One page,
// ordered by synapseId (neuPrint's fetch_synapse_connections).
//
// $pre: list<int> - presynaptic bodyIds
// $post: list<int>? = null - postsynaptic bodyIds (null: any)
// $minConfidence: float = 0.0 - smallest confidence of either side kept
// $afterId: int? = null - synapseId of the last row of the previous page (null: first page)
// $first: int = 1000 - page size
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
UNWIND $pre AS preId
MATCH (a:Segment {bodyId: preId})-[:Contains]->(:SynapseSet)-[ca:Contains]->
      (s:Synapse {type: 'pre'})-[:SynapsesTo]->(t:Synapse)<-[cb:Contains]-(:SynapseSet)
      <-[:Contains]-(b:Segment)
WHERE ca.validFrom <= v AND (ca.validTo IS NULL OR ca.validTo > v)
  AND cb.validFrom <= v AND (cb.validTo IS NULL OR cb.validTo > v)
  AND ($post IS NULL OR b.bodyId IN $post)
  AND s.confidence >= $minConfidence AND t.confidence >= $minConfidence
  AND ($afterId IS NULL OR s.synapseId > $afterId)
RETURN s.synapseId AS synapseId, a.bodyId AS pre, b.bodyId AS post, s {.*} AS s, t {.*} AS t
ORDER BY synapseId
LIMIT $first
