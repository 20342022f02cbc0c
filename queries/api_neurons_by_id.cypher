// Which of these bodies existed at a version, and with what properties?
// One row per id valid then (the API batches neuron lookups through it).
//
// $ids: list<int> - bodyIds
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
UNWIND $ids AS id
MATCH (n:Segment {bodyId: id})
WHERE n.validFrom <= v AND (n.validTo IS NULL OR n.validTo > v)
RETURN id, n {.*} AS n
