// 010: what an imported cell is (docs/import-connectome.md): Segment.kind is
// 'neuron', 'muscle' or 'other' (null for reconstructed bodies). Only kind 'neuron'
// gets :Neuron, so muscles and other cells are found by this property.
CREATE INDEX segment_kind IF NOT EXISTS
FOR (s:Segment) ON (s.kind);
