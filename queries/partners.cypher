// Which bodies does this body connect to, upstream and downstream, and with what weight?
//
// $bodyId: int - the body
// $minWeight: int = 1 - smallest ConnectsTo.weight returned
// $asOf: int? = null - version to answer for (null: the current version)
// $limit: int = 1000 - most rows returned
WITH coalesce($asOf, 2^62) AS v
MATCH (b:Segment {bodyId: $bodyId})-[e:ConnectsTo]-(p:Segment)
WHERE e.validFrom <= v AND (e.validTo IS NULL OR e.validTo > v) AND e.weight >= $minWeight
RETURN p.bodyId AS partner,
       CASE WHEN startNode(e) = b THEN 'downstream' ELSE 'upstream' END AS direction,
       e.weight AS weight, p.type AS type, p.instance AS instance
ORDER BY weight DESC, partner
LIMIT $limit
