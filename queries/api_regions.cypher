// Which named regions are there, with their box ([z0, y0, x0, z1, y1, x1] voxels, end
// exclusive), QA flags and reason?
//
MATCH (r:Region)
RETURN r {.*} AS r
ORDER BY r.name
