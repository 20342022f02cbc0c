// What is the newest graph version, and is it complete (not a load in progress)?
// One row; nulls on an empty graph.
MATCH (v:Version)
WITH v ORDER BY v.version DESC LIMIT 1
RETURN v.version AS version, v.complete AS complete
