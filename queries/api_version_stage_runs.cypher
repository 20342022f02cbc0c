// Which stage runs was the graph loaded from, up to a version?
//
// $asOf: int? = null - version (null: the current version)
WITH coalesce($asOf, 4611686018427387904) AS v
MATCH (ver:Version)-[:FromStageRun]->(r:StageRun)
WHERE ver.version <= v
RETURN DISTINCT r.stageRunId AS stageRunId
ORDER BY stageRunId
