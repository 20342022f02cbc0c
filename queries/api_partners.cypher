// Who are the partners of each of these bodies, strongest first? (batched form of partners)
// One row per body with a list of {partner, weight, direction}; a partner's type, instance
// and status are the versioned annotation at $asOf where there is one.
//
// $ids: list<int> - bodyIds
// $direction: str = "both" - 'upstream' (inputs), 'downstream' (outputs) or 'both'
// $minWeight: int = 1 - smallest ConnectsTo.weight kept
// $first: int = 100 - most partners per body
// $asOf: int? = null - version to answer for (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
UNWIND $ids AS id
MATCH (n:Segment {bodyId: id})
CALL (n, v) {
  MATCH (n)-[r:ConnectsTo]->(m:Segment)
  WHERE $direction <> 'upstream' AND r.weight >= $minWeight
    AND r.validFrom <= v AND (r.validTo IS NULL OR r.validTo > v)
  RETURN m, r.weight AS weight, 'downstream' AS direction
  UNION ALL
  MATCH (n)<-[r:ConnectsTo]-(m:Segment)
  WHERE $direction <> 'downstream' AND r.weight >= $minWeight
    AND r.validFrom <= v AND (r.validTo IS NULL OR r.validTo > v)
  RETURN m, r.weight AS weight, 'upstream' AS direction
}
WITH id, m, weight, direction, v
WITH id, m, weight, direction, head([(m)-[:HasAnnotation]->(a:Annotation)
     WHERE a.validFrom <= v AND (a.validTo IS NULL OR a.validTo > v) | a]) AS ann
ORDER BY weight DESC, m.bodyId, direction
WITH id, collect({partner: m {.*, type: CASE WHEN ann IS NULL THEN m.type ELSE ann.type END,
                             instance: CASE WHEN ann IS NULL THEN m.instance ELSE ann.instance END,
                             status: CASE WHEN ann IS NULL THEN m.status ELSE ann.status END},
                  weight: weight, direction: direction}) AS partners
RETURN id, partners[..$first] AS partners
