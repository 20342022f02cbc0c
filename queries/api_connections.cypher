// Which connections go from one set of bodies to another? One page, ordered by (pre, post).
//
// $pre: list<int> - presynaptic bodyIds
// $post: list<int>? = null - postsynaptic bodyIds (null: any body)
// $minWeight: int = 1 - smallest ConnectsTo.weight kept
// $afterPre: int? = null - pre of the last row of the previous page (null: first page)
// $afterPost: int? = null - post of the last row of the previous page
// $first: int = 1000 - page size
// $asOf: int? = null - version to answer for (null: the current version)
// (UNWIND anchors each pre body on its unique index; a plain `a.bodyId IN $pre` lets the
// planner scan every ConnectsTo through the weight index instead.)
WITH coalesce($asOf, 4611686018427387904) AS v
UNWIND $pre AS preId
MATCH (a:Segment {bodyId: preId})-[r:ConnectsTo]->(b:Segment)
WHERE ($post IS NULL OR b.bodyId IN $post) AND r.weight >= $minWeight
  AND r.validFrom <= v AND (r.validTo IS NULL OR r.validTo > v)
  AND ($afterPre IS NULL OR a.bodyId > $afterPre
       OR (a.bodyId = $afterPre AND b.bodyId > $afterPost))
RETURN a.bodyId AS pre, b.bodyId AS post, r.weight AS weight, r.weightHR AS weightHR
ORDER BY pre, post
LIMIT $first
