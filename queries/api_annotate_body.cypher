// Annotate a current body (a write) as a new graph version: set its type, instance and/or
// status. Nothing happens (no row) when the body is not current or nothing changes.
// The version gets (:Version {kind: 'annotate'}) and (:Operation {kind: 'annotate'})
// -[:Annotated]->(body); the values live in (:Segment)-[:HasAnnotation]->(:Annotation
// {validFrom, validTo, type, instance, status}), so asOf reads see the values of their
// version. The first annotation of a body also records the values it had before
// (validFrom = the body's validFrom). The body's own properties hold the newest values
// (what neuPrint-style Cypher reads).
//
// $bodyId: int - the body (must be current)
// $type: str? = null - new cell type (null: unchanged)
// $instance: str? = null - new instance (null: unchanged)
// $status: str? = null - new status (null: unchanged)
// $user: str? = null - who annotated it (token name)
// $params: str - the change as JSON (stored on the operation)
MATCH (n:Segment {bodyId: $bodyId})
WHERE n.validTo IS NULL
WITH n, coalesce($type, n.type) AS type, coalesce($instance, n.instance) AS instance,
     coalesce($status, n.status) AS status
// control characters are refused in values, so U+0000 stands for null here
WHERE coalesce(type, '\u0000') <> coalesce(n.type, '\u0000')
   OR coalesce(instance, '\u0000') <> coalesce(n.instance, '\u0000')
   OR coalesce(status, '\u0000') <> coalesce(n.status, '\u0000')
CALL () {
  OPTIONAL MATCH (last:Version)
  RETURN coalesce(max(last.version), 0) + 1 AS ver
}
CREATE (version:Version {version: ver, createdAt: toString(datetime()), complete: true,
                         kind: 'annotate', source: 'annotateNeuron', note: $params})
CREATE (op:Operation {operationId: 'v' + ver + ':annotate', kind: 'annotate', version: ver,
                      user: $user, timestamp: version.createdAt, params: $params})
CREATE (op)-[:Annotated]->(n)
WITH n, type, instance, status, ver, op
CALL (n, ver) {
  WITH n, ver WHERE NOT EXISTS { (n)-[:HasAnnotation]->() }
  CREATE (n)-[:HasAnnotation]->(:Annotation {bodyId: n.bodyId, validFrom: n.validFrom,
      validTo: ver, type: n.type, instance: n.instance, status: n.status})
}
CALL (n, ver) {
  MATCH (n)-[:HasAnnotation]->(a:Annotation) WHERE a.validTo IS NULL
  SET a.validTo = ver
}
CREATE (n)-[:HasAnnotation]->(:Annotation {bodyId: n.bodyId, validFrom: ver, type: type,
    instance: instance, status: status, user: $user, operationId: op.operationId})
SET n.type = type, n.instance = instance, n.status = status, n.annotatedBy = $user,
    n.annotatedAt = datetime()
WITH n, ver
CALL (ver) {
  MATCH (m:Meta)
  SET m.currentVersion = ver, m.latestMutationId = ver, m.lastDatabaseEdit = toString(datetime())
}
RETURN ver AS version
