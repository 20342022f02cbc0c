// Set the status and/or type of a current body (write); null leaves a field unchanged.
// Returns the body, or no row when it is not current.
// Parameters:
//   $bodyId  the body
//   $status  new status or null
//   $type    new cell type or null
//   $user    who annotated it (token name)
MATCH (n:Segment {bodyId: $bodyId})
WHERE n.validTo IS NULL
SET n.status = coalesce($status, n.status), n.type = coalesce($type, n.type),
    n.annotatedBy = $user, n.annotatedAt = datetime()
RETURN n {.*} AS n
