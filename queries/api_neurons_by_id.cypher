// Which of these bodies existed at a version, and with what properties?
// One row per id valid then (the API batches neuron lookups through it). type, instance and
// status are the annotation valid at that version (:Annotation history), if any.
//
// $ids: list<int> - bodyIds
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
UNWIND $ids AS id
MATCH (n:Segment {bodyId: id})
WHERE n.validFrom <= v AND (n.validTo IS NULL OR n.validTo > v)
WITH id, n, v, head([(n)-[:HasAnnotation]->(a:Annotation)
                 WHERE a.validFrom <= v AND (a.validTo IS NULL OR a.validTo > v) | a]) AS ann
RETURN id, n {.*, type: CASE WHEN ann IS NULL THEN n.type ELSE ann.type END,
       instance: CASE WHEN ann IS NULL THEN n.instance ELSE ann.instance END,
       status: CASE WHEN ann IS NULL THEN n.status ELSE ann.status END} AS n
