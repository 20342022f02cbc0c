"""L5 serve: the ``graph`` stage, the workspace's tables loaded into Neo4j with L5 quality."""

from cxgraph.graph.params import GraphParams
from pipeline import registry
from pipeline.engine import Stage, graph, table
from pipeline.engine.run import STAMP_READERS
from pipeline.serve import graph_stage

STAMP_READERS["graph"] = graph_stage.read_graph_stamp

STAGE = registry.register(Stage(
    name="graph", layer="L5", params=GraphParams,
    inputs=(table("synapses"), table("supervoxels"), table("agglomeration")),
    outputs=(graph(),),
    finalize=graph_stage.finalize,
    # joins the default pipeline when L3/L4 write these tables; until then `cxgraph load`
    default=False,
    description="tables -> a version of the Neo4j graph + L5 graph statistics",
))
