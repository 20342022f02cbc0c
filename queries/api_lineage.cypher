// Lineage of a body: the operations that created or retired it (up to a version), the older
// bodies it superseded and the newer ones that superseded it, and its supervoxel count.
// An operation's created/retired lists are cut at 100 ids (counts are exact).
// Parameters:
//   $bodyId   the body (any version: bodies are immutable and ids never reused)
//   $version  version number; operations and successors after it are left out
//             (above Meta.currentVersion, e.g. 2^62, means "now")
MATCH (b:Segment {bodyId: $bodyId})
OPTIONAL MATCH (o:Operation)-[:Created|Retired]->(b)
WHERE coalesce(o.version, 0) <= $version
WITH b, collect(DISTINCT o) AS ops
RETURN b {.*} AS b,
       [o IN ops | {
          o: o {.*},
          created: [(o)-[:Created]->(c:Segment) | c.bodyId][..100],
          createdCount: COUNT { (o)-[:Created]->(:Segment) },
          retired: [(o)-[:Retired]->(r:Segment) | r.bodyId][..100],
          retiredCount: COUNT { (o)-[:Retired]->(:Segment) }
       }] AS operations,
       [(old:Segment)-[:SupersededBy]->(b) | old.bodyId] AS supersedes,
       [(b)-[:SupersededBy]->(new:Segment) WHERE new.validFrom <= $version | new.bodyId]
         AS supersededBy,
       COUNT { (:Supervoxel)-[:PartOf]->(b) } AS supervoxelCount
