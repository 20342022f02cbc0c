// Annotate a current body (a write): set its status and/or cell type. Returns the body.
//
// $bodyId: int - the body (must be current)
// $status: str? = null - new status (null: unchanged)
// $type: str? = null - new cell type (null: unchanged)
// $user: str? = null - who annotated it (token name)
MATCH (n:Segment {bodyId: $bodyId})
WHERE n.validTo IS NULL
SET n.status = coalesce($status, n.status), n.type = coalesce($type, n.type),
    n.annotatedBy = $user, n.annotatedAt = datetime()
RETURN n {.*} AS n
