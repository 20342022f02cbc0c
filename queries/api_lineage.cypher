// Where did this body come from: which operations created, retired or annotated it, which bodies did
// it replace and which replaced it, and how many supervoxels does it have?
// An operation's created/retired lists are cut at 100 ids (the counts are exact).
//
// $bodyId: int - the body (any version: bodies are immutable and ids never reused)
// $asOf: int? = null - leave out operations and successors after this version (null: none)
WITH coalesce($asOf, 4611686018427387904) AS v
MATCH (b:Segment {bodyId: $bodyId})
OPTIONAL MATCH (o:Operation)-[:Created|Retired|Annotated]->(b)
WHERE coalesce(o.version, 0) <= v
WITH v, b, collect(DISTINCT o) AS ops
RETURN b {.*} AS b,
       [o IN ops | {
          o: o {.*},
          created: [(o)-[:Created]->(c:Segment) | c.bodyId][..100],
          createdCount: COUNT { (o)-[:Created]->(:Segment) },
          retired: [(o)-[:Retired]->(r:Segment) | r.bodyId][..100],
          retiredCount: COUNT { (o)-[:Retired]->(:Segment) }
       }] AS operations,
       [(old:Segment)-[:SupersededBy]->(b) | old.bodyId] AS supersedes,
       [(b)-[:SupersededBy]->(new:Segment) WHERE new.validFrom <= v | new.bodyId]
         AS supersededBy,
       COUNT { (:Supervoxel)-[:PartOf]->(b) } AS supervoxelCount
