// Bodies matching a filter at a version, ordered by bodyId: one page (keyset pagination).
// Parameters (null = no condition):
//   $version   version number; above Meta.currentVersion (e.g. 2^62) means "now"
//   $after     bodyId of the last body of the previous page, or null for the first page
//   $first     page size (rows returned; ask for one more to learn if a next page exists)
//   $bodyIds   list of bodyIds, $type, $status, $minSize, $maxSize (voxels), $minPre, $minPost,
//   $region    ROI name: body has a roiInfo entry or a true ROI property of that name
MATCH (n:Segment)
WHERE n.bodyId > coalesce($after, -9223372036854775808)
  AND n.validFrom <= $version AND (n.validTo IS NULL OR n.validTo > $version)
  AND ($bodyIds IS NULL OR n.bodyId IN $bodyIds)
  AND ($type IS NULL OR n.type = $type)
  AND ($status IS NULL OR n.status = $status)
  AND ($minSize IS NULL OR n.size >= $minSize)
  AND ($maxSize IS NULL OR n.size <= $maxSize)
  AND ($minPre IS NULL OR n.pre >= $minPre)
  AND ($minPost IS NULL OR n.post >= $minPost)
  AND ($region IS NULL OR n[$region] = true
       OR n.roiInfo CONTAINS ('"' + $region + '":'))
RETURN n {.*} AS n
ORDER BY n.bodyId
LIMIT $first
