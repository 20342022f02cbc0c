// The stage runs the graph was loaded from, up to a version.
// Parameters:
//   $version  version number; above Meta.currentVersion (e.g. 2^62) means "now"
MATCH (v:Version)-[:FromStageRun]->(r:StageRun)
WHERE v.version <= $version
RETURN DISTINCT r.stageRunId AS stageRunId
ORDER BY stageRunId
