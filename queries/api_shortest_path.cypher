// A shortest directed path of connections between two bodies at a version, following only
// edges with weight >= $minWeight; searches at most 8 hops (the API drops longer ones).
// Parameters:
//   $from, $to   bodyIds (must differ)
//   $minWeight   smallest ConnectsTo.weight followed
//   $version     version number; above Meta.currentVersion (e.g. 2^62) means "now"
MATCH (a:Segment {bodyId: $from}), (b:Segment {bodyId: $to})
WHERE a.validFrom <= $version AND (a.validTo IS NULL OR a.validTo > $version)
  AND b.validFrom <= $version AND (b.validTo IS NULL OR b.validTo > $version)
MATCH p = shortestPath((a)-[:ConnectsTo*..8]->(b))
WHERE all(r IN relationships(p) WHERE r.weight >= $minWeight
          AND r.validFrom <= $version AND (r.validTo IS NULL OR r.validTo > $version))
RETURN [n IN nodes(p) | n.bodyId] AS bodyIds, [r IN relationships(p) | r.weight] AS weights
