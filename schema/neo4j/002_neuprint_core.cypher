// 002: the neuPrint core (notes/neuprint-model.md): bodies, connections,
// synapse sets, synapses, one :Meta per dataset.
//   (:Segment[:Neuron] {bodyId, size, pre, post, upstream, downstream, synweight,
//                       status, type, instance, roiInfo, validFrom, validTo, stageRun, block})
//   (:Segment)-[:ConnectsTo {weight, weightHR, validFrom, validTo}]->(:Segment)
//   (:Segment)-[:Contains]->(:SynapseSet {synapseSetId: "<pre>_<post>_pre|post"})
//   (:SynapseSet)-[:Contains {validFrom, validTo}]->(:Synapse)
//   (:SynapseSet)-[:ConnectsTo]->(:SynapseSet)
//   (:Synapse {synapseId, type: 'pre'|'post', location: point(x, y, z) voxels, confidence, ...})
//   (:Synapse {type:'pre'})-[:SynapsesTo]->(:Synapse {type:'post'})
CREATE CONSTRAINT segment_body_id IF NOT EXISTS
FOR (s:Segment) REQUIRE s.bodyId IS UNIQUE;

CREATE CONSTRAINT neuron_body_id IF NOT EXISTS
FOR (n:Neuron) REQUIRE n.bodyId IS UNIQUE;

CREATE CONSTRAINT synapse_set_id IF NOT EXISTS
FOR (ss:SynapseSet) REQUIRE ss.synapseSetId IS UNIQUE;

// A detected synapse is one row of tables/synapses: a 'pre' and a 'post' node
// share its synapseId; the pair is unique.
CREATE CONSTRAINT synapse_id_type IF NOT EXISTS
FOR (s:Synapse) REQUIRE (s.synapseId, s.type) IS UNIQUE;

CREATE CONSTRAINT meta_dataset IF NOT EXISTS
FOR (m:Meta) REQUIRE m.dataset IS UNIQUE;

CREATE POINT INDEX synapse_location IF NOT EXISTS
FOR (s:Synapse) ON (s.location);

CREATE INDEX synapse_confidence IF NOT EXISTS
FOR (s:Synapse) ON (s.confidence);

CREATE INDEX segment_status IF NOT EXISTS
FOR (s:Segment) ON (s.status);

CREATE INDEX segment_type IF NOT EXISTS
FOR (s:Segment) ON (s.type);

CREATE INDEX segment_instance IF NOT EXISTS
FOR (s:Segment) ON (s.instance);

CREATE INDEX segment_size IF NOT EXISTS
FOR (s:Segment) ON (s.size);

CREATE INDEX segment_pre IF NOT EXISTS
FOR (s:Segment) ON (s.pre);

CREATE INDEX segment_post IF NOT EXISTS
FOR (s:Segment) ON (s.post);

CREATE INDEX neuron_type IF NOT EXISTS
FOR (n:Neuron) ON (n.type);

CREATE FULLTEXT INDEX neuron_search IF NOT EXISTS
FOR (n:Neuron) ON EACH [n.type, n.instance, n.name];
