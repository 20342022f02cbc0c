// 003: what neuPrint lacks: supervoxel lineage, operations, versions.
//   (:Supervoxel {svId, size, block, stageRun, centroid: point(x, y, z), validFrom, validTo})
//   (:Supervoxel)-[:PartOf {validFrom, validTo}]->(:Segment)
//   (:Supervoxel)-[:MergedWith {affinity, score, step, block, stageRun, operationId,
//                               validFrom, validTo}]->(:Supervoxel)
//   (:Operation {operationId, kind, timestamp, user, params, stageRun, version})
//   (:Operation)-[:Created]->(:Segment)   (:Operation)-[:Retired]->(:Segment)
//   (:Segment)-[:SupersededBy {operationId}]->(:Segment)
//   (:Version {version, createdAt, fingerprint, source, note})
// Version interval convention: an object is valid at version v when
//   validFrom <= v AND (validTo IS NULL OR validTo > v).
CREATE CONSTRAINT supervoxel_sv_id IF NOT EXISTS
FOR (s:Supervoxel) REQUIRE s.svId IS UNIQUE;

CREATE CONSTRAINT operation_id IF NOT EXISTS
FOR (o:Operation) REQUIRE o.operationId IS UNIQUE;

CREATE CONSTRAINT version_number IF NOT EXISTS
FOR (v:Version) REQUIRE v.version IS UNIQUE;

CREATE INDEX operation_kind IF NOT EXISTS
FOR (o:Operation) ON (o.kind);

CREATE INDEX segment_valid_from IF NOT EXISTS
FOR (s:Segment) ON (s.validFrom);

CREATE INDEX segment_valid_to IF NOT EXISTS
FOR (s:Segment) ON (s.validTo);

CREATE INDEX synapse_valid_to IF NOT EXISTS
FOR (s:Synapse) ON (s.validTo);

CREATE INDEX supervoxel_valid_to IF NOT EXISTS
FOR (s:Supervoxel) ON (s.validTo);

CREATE INDEX part_of_valid_from IF NOT EXISTS
FOR ()-[r:PartOf]-() ON (r.validFrom);

CREATE INDEX connects_to_valid_to IF NOT EXISTS
FOR ()-[r:ConnectsTo]-() ON (r.validTo);

CREATE INDEX connects_to_weight IF NOT EXISTS
FOR ()-[r:ConnectsTo]-() ON (r.weight);

CREATE INDEX merged_with_operation IF NOT EXISTS
FOR ()-[r:MergedWith]-() ON (r.operationId);
