// Set the QA flags and reason of a named region (write). Returns the region, or no row.
// Parameters:
//   $name    region name
//   $flags   list of flag strings (replaces the old list)
//   $reason  free text
//   $user    who flagged it (token name)
MATCH (r:Region {name: $name})
SET r.flags = $flags, r.reason = $reason, r.flaggedBy = $user, r.flaggedAt = datetime()
RETURN r {.*} AS r
