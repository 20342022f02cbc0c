// Every named region with its box ([z0, y0, x0, z1, y1, x1] voxels, end exclusive), flags
// and reason, by name.
// Parameters: none
MATCH (r:Region)
RETURN r {.*} AS r
ORDER BY r.name
