// Bodies by id as they were at a version: one row per id that was valid then.
// Used by the GraphQL API to batch neuron lookups (one query per request batch).
// Parameters:
//   $ids      list of bodyIds (int64)
//   $version  version number; a number above Meta.currentVersion (e.g. 2^62) means "now"
UNWIND $ids AS id
MATCH (n:Segment {bodyId: id})
WHERE n.validFrom <= $version AND (n.validTo IS NULL OR n.validTo > $version)
RETURN id, n {.*} AS n
