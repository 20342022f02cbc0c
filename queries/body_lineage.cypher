// Which operations made this body, and which bodies did it replace (back to the first version)?
// One row per ancestor body (distance 0 is the body itself) with the operation that created it.
//
// $bodyId: int - the body
// $maxDepth: int = 50 - how many supersessions to follow back
MATCH path = (anc:Segment)-[:SupersededBy*0..50]->(b:Segment {bodyId: $bodyId})
WHERE length(path) <= $maxDepth
WITH anc, min(length(path)) AS distance
OPTIONAL MATCH (op:Operation)-[:Created]->(anc)
OPTIONAL MATCH (anc)-[s:SupersededBy]->(next:Segment)
RETURN anc.bodyId AS bodyId, distance, anc.validFrom AS validFrom, anc.validTo AS validTo,
       op.operationId AS createdBy, op.kind AS kind, op.stageRun AS stageRun,
       op.timestamp AS timestamp, collect(DISTINCT next.bodyId) AS supersededBy
ORDER BY distance, bodyId
