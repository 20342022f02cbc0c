// Which connections go from a set of bodies to another set, and with what weight?
//
// $pre: list<int> - presynaptic body ids
// $post: list<int> - postsynaptic body ids
// $minWeight: int = 1 - smallest ConnectsTo.weight returned
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 2^62) AS v
UNWIND $pre AS preId
MATCH (a:Segment {bodyId: preId})-[e:ConnectsTo]->(b:Segment)
WHERE b.bodyId IN $post
  AND e.validFrom <= v AND (e.validTo IS NULL OR e.validTo > v) AND e.weight >= $minWeight
RETURN a.bodyId AS pre, b.bodyId AS post, e.weight AS weight, e.weightHR AS weightHR
ORDER BY pre, post
