// Flag a named region for QA (a write): set its flags and reason. Returns the region.
//
// $name: str - region name
// $flags: list<str> - flags (replace the old list)
// $reason: str? = null - why
// $user: str? = null - who flagged it (token name)
MATCH (r:Region {name: $name})
SET r.flags = $flags, r.reason = $reason, r.flaggedBy = $user, r.flaggedAt = datetime()
RETURN r {.*} AS r
