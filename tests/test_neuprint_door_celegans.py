"""neuprint-python, unchanged, against the C. elegans import (Cook et al. 2019 from `cect`)
behind the neuPrint front door; answers checked against cect's own matrices."""

from __future__ import annotations

import neuprint
import numpy as np
import pytest
from neuprint import NeuronCriteria as NC
from neuprint_helpers import door

from cxgraph.api.auth import TokenStore
from cxgraph.graph import GraphStore
from cxgraph.graph.loader import load_snapshot
from cxgraph.graph.params import GraphParams
from cxgraph.workspace import Workspace

cect = pytest.importorskip("cect")
DATASET = "cook2019-herm"


@pytest.fixture(scope="module")
def cook():
    """(cell names, chemical matrix) of cect's Cook 2019 hermaphrodite."""
    from cect.readers import Cook2019HermReader

    ds = Cook2019HermReader.get_instance(from_cache=True)
    return list(ds.nodes), np.asarray(ds.connections["Generic_CS"])


@pytest.fixture(scope="module")
def client(neo4j_connection, tmp_path_factory):
    from cxgraph.graph.celegans import cect_tables
    from cxgraph.graph.import_connectome import snapshot_from_edge_list

    store = GraphStore(neo4j_connection, batch_size=500, query_timeout_s=60.0)
    store.clear()
    edges, neurons = cect_tables("Cook2019Herm")
    load_snapshot(store, snapshot_from_edge_list(edges, neurons, source="cect:Cook2019Herm"),
                  GraphParams(dataset=DATASET))
    ws = Workspace.create(tmp_path_factory.mktemp("cook_door"))
    token, _ = TokenStore.for_workspace(ws.root).create("analyst", "read")
    with door(store, ws) as d:
        neuprint.Client.DATASETS_CACHE.clear()
        yield neuprint.Client(d["url"], token=token, verify=d["cert"], progress=False)
    store.close()


def test_aval_partners_as_the_file(client, cook):
    nodes, cs = cook
    row = cs[nodes.index("AVAL")]
    partners = sorted(((nodes[j], int(row[j])) for j in np.nonzero(row)[0]),
                      key=lambda p: (-p[1], p[0]))
    assert client.dataset == DATASET
    df = client.fetch_custom("MATCH (a:Neuron {instance:'AVAL'})-[w:ConnectsTo]->(b) "
                             "RETURN b.instance, w.weight ORDER BY w.weight DESC, b.instance "
                             "LIMIT 5")
    assert [tuple(r) for r in df.values.tolist()] == partners[:5]
    neurons, _ = neuprint.fetch_neurons(NC(instance="AVAL"), client=client)
    aval = int(neurons["bodyId"][0])
    conn = neuprint.fetch_simple_connections(aval, client=client)
    got = dict(zip(conn["instance_post"], conn["weight"], strict=True))
    # fetch_simple_connections targets :Neuron partners (muscles are :Segment)
    assert all(got[name] == w for name, w in partners if name in got)
    assert got[partners[0][0]] == partners[0][1]
    adj_neurons, adj = neuprint.fetch_adjacencies(aval, None, client=client)
    assert int(adj["weight"].sum()) == sum(w for name, w in partners if name in got)


def test_types_and_neuron_rule(client):
    df, _ = neuprint.fetch_neurons(NC(type="AVA"), client=client)
    assert sorted(df["instance"]) == ["AVAL", "AVAR"]
    seg, _ = neuprint.fetch_neurons(NC(type="pm[0-9]", regex=True, label="Segment"),
                                    client=client)
    neu, _ = neuprint.fetch_neurons(NC(type="pm[0-9]", regex=True), client=client)
    assert len(seg) > 0 and neu.empty  # pharyngeal muscles are :Segment, not :Neuron
