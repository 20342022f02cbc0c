// Partners of many bodies at once, at a version: for each body, the bodies it connects to
// (downstream), from (upstream) or both, with weight >= $minWeight, strongest first.
// Parameters:
//   $ids        list of bodyIds
//   $direction  'upstream' | 'downstream' | 'both'
//   $minWeight  smallest ConnectsTo.weight kept
//   $first      most partners returned per body
//   $version    version number; above Meta.currentVersion (e.g. 2^62) means "now"
UNWIND $ids AS id
MATCH (n:Segment {bodyId: id})
CALL (n) {
  MATCH (n)-[r:ConnectsTo]->(m:Segment)
  WHERE $direction <> 'upstream' AND r.weight >= $minWeight
    AND r.validFrom <= $version AND (r.validTo IS NULL OR r.validTo > $version)
  RETURN m, r.weight AS weight, 'downstream' AS direction
  UNION ALL
  MATCH (n)<-[r:ConnectsTo]-(m:Segment)
  WHERE $direction <> 'downstream' AND r.weight >= $minWeight
    AND r.validFrom <= $version AND (r.validTo IS NULL OR r.validTo > $version)
  RETURN m, r.weight AS weight, 'upstream' AS direction
}
WITH id, m, weight, direction
ORDER BY weight DESC, m.bodyId, direction
WITH id, collect({partner: m {.*}, weight: weight, direction: direction}) AS partners
RETURN id, partners[..$first] AS partners
