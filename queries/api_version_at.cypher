// Which graph version was current at a moment? The newest complete version created at or
// before it (CAVE's timestamp convention); no row if the graph is younger.
//
// $at: str - ISO 8601 date-time with a UTC offset, e.g. 2026-12-02T17:00:00+00:00
MATCH (ver:Version)
WHERE ver.complete AND datetime(ver.createdAt) <= datetime($at)
RETURN ver.version AS version, ver.createdAt AS createdAt
ORDER BY version DESC
LIMIT 1
