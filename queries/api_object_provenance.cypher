// The producing stage run and block of a body, synapse or supervoxel with this id.
// Parameters:
//   $id     the object id (bodyId, synapseId or svId)
//   $kinds  which kinds to look for: a list of 'body', 'synapse', 'supervoxel'
CALL () {
  MATCH (n:Segment {bodyId: $id}) WHERE 'body' IN $kinds
  RETURN 'body' AS kind, n.stageRun AS stageRun, n.block AS block,
         n.validFrom AS validFrom, n.validTo AS validTo
  UNION ALL
  MATCH (n:Synapse {synapseId: $id}) WHERE 'synapse' IN $kinds
  RETURN 'synapse' AS kind, n.stageRun AS stageRun, n.block AS block,
         n.validFrom AS validFrom, n.validTo AS validTo
  UNION ALL
  MATCH (n:Supervoxel {svId: $id}) WHERE 'supervoxel' IN $kinds
  RETURN 'supervoxel' AS kind, n.stageRun AS stageRun, n.block AS block,
         n.validFrom AS validFrom, n.validTo AS validTo
}
RETURN DISTINCT kind, stageRun, block, validFrom, validTo
