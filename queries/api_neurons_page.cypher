// Which bodies match a filter at a version? One page, ordered by bodyId (keyset pagination).
// type, instance and status are the annotation valid at that version (:Annotation history,
// written by annotateNeuron), else the body's own properties.
//
// $asOf: int? = null - version to answer for (null: the current version)
// $after: int? = null - bodyId of the last body of the previous page (null: first page)
// $first: int = 100 - page size (the API asks one more to learn whether a next page exists)
// $bodyIds: list<int>? = null - only these bodies
// $type: str? = null - cell type
// $instance: str? = null - instance (neuPrint's per-cell name)
// $status: str? = null - proofreading status
// $minSize: int? = null - smallest size (voxels)
// $maxSize: int? = null - largest size (voxels)
// $minPre: int? = null - fewest presynaptic sites
// $minPost: int? = null - fewest postsynaptic sites
// $region: str? = null - ROI name: a roiInfo entry or a true ROI property of that name
WITH coalesce($asOf, 4611686018427387904) AS v
MATCH (n:Segment)
WHERE n.bodyId > coalesce($after, -9223372036854775808)
  AND n.validFrom <= v AND (n.validTo IS NULL OR n.validTo > v)
  AND ($bodyIds IS NULL OR n.bodyId IN $bodyIds)
  AND ($minSize IS NULL OR n.size >= $minSize)
  AND ($maxSize IS NULL OR n.size <= $maxSize)
  AND ($minPre IS NULL OR n.pre >= $minPre)
  AND ($minPost IS NULL OR n.post >= $minPost)
  AND ($region IS NULL OR n[$region] = true
       OR n.roiInfo CONTAINS ('"' + $region + '":'))
  // cheap pre-filter; the exact test on the versioned values follows
  AND (($type IS NULL OR n.type = $type) AND ($instance IS NULL OR n.instance = $instance)
       AND ($status IS NULL OR n.status = $status) OR EXISTS { (n)-[:HasAnnotation]->() })
WITH n, v, head([(n)-[:HasAnnotation]->(a:Annotation)
                 WHERE a.validFrom <= v AND (a.validTo IS NULL OR a.validTo > v) | a]) AS ann
WITH n {.*, type: CASE WHEN ann IS NULL THEN n.type ELSE ann.type END,
       instance: CASE WHEN ann IS NULL THEN n.instance ELSE ann.instance END,
       status: CASE WHEN ann IS NULL THEN n.status ELSE ann.status END} AS n
WHERE ($type IS NULL OR n.type = $type) AND ($instance IS NULL OR n.instance = $instance)
  AND ($status IS NULL OR n.status = $status)
RETURN n
ORDER BY n.bodyId
LIMIT $first
