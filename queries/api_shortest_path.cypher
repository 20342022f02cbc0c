// What is the shortest directed chain of connections from one body to another?
// Follows only edges with weight >= $minWeight, at most 8 hops.
//
// $from: int - start bodyId
// $to: int - end bodyId (must differ from $from)
// $minWeight: int = 1 - smallest ConnectsTo.weight followed
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
MATCH (a:Segment {bodyId: $from}), (b:Segment {bodyId: $to})
WHERE a.validFrom <= v AND (a.validTo IS NULL OR a.validTo > v)
  AND b.validFrom <= v AND (b.validTo IS NULL OR b.validTo > v)
MATCH p = shortestPath((a)-[:ConnectsTo*..8]->(b))
WHERE all(r IN relationships(p) WHERE r.weight >= $minWeight
          AND r.validFrom <= v AND (r.validTo IS NULL OR r.validTo > v))
RETURN [n IN nodes(p) | n.bodyId] AS bodyIds, [r IN relationships(p) | r.weight] AS weights
