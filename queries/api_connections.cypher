// Connections from a set of bodies to another at a version, ordered by (pre, post): one page.
// Parameters:
//   $pre, $post           lists of bodyIds (presynaptic side, postsynaptic side)
//   $minWeight            smallest ConnectsTo.weight kept
//   $afterPre, $afterPost the (pre, post) of the last row of the previous page, or null
//   $first                page size
//   $version              version number; above Meta.currentVersion (e.g. 2^62) means "now"
MATCH (a:Segment)-[r:ConnectsTo]->(b:Segment)
WHERE a.bodyId IN $pre AND b.bodyId IN $post AND r.weight >= $minWeight
  AND r.validFrom <= $version AND (r.validTo IS NULL OR r.validTo > $version)
  AND ($afterPre IS NULL OR a.bodyId > $afterPre
       OR (a.bodyId = $afterPre AND b.bodyId > $afterPost))
RETURN a.bodyId AS pre, b.bodyId AS post, r.weight AS weight, r.weightHR AS weightHR
ORDER BY pre, post
LIMIT $first
