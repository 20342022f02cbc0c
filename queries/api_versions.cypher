// Which graph versions are there, when were they made, and what made them: the stage runs
// a version was loaded from and its operations (load, agglomerate, annotate, ...).
// Operations' created/retired lists are cut at 100 ids (the counts are exact).
//
// $from: int? = null - smallest version listed (null: 1)
// $to: int? = null - largest version listed (null: the newest)
MATCH (ver:Version)
WHERE ($from IS NULL OR ver.version >= $from) AND ($to IS NULL OR ver.version <= $to)
RETURN ver {.*} AS ver,
       COLLECT { MATCH (ver)-[:FromStageRun]->(r:StageRun) RETURN r.stageRunId
                 ORDER BY r.stageRunId } AS stageRuns,
       COLLECT { MATCH (o:Operation) WHERE o.version = ver.version
                 RETURN {o: o {.*},
                         created: COLLECT { MATCH (o)-[:Created]->(c:Segment)
                                            RETURN c.bodyId LIMIT 100 },
                         createdCount: COUNT { (o)-[:Created]->(:Segment) },
                         retired: COLLECT { MATCH (o)-[:Retired]->(r:Segment)
                                            RETURN r.bodyId LIMIT 100 },
                         retiredCount: COUNT { (o)-[:Retired]->(:Segment) }}
                 ORDER BY o.operationId } AS operations
ORDER BY ver.version
