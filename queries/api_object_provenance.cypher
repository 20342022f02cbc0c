// Which stage run and block produced the body, synapse or supervoxel with this id?
// Body, synapse and supervoxel ids are separate spaces: one row per kind that has the id.
//
// $id: int - bodyId, synapseId or svId
// $kinds: list<str> = ["body", "synapse", "supervoxel"] - which kinds to look for
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
