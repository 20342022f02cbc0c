"""A real connectome: C. elegans hermaphrodite (Cook et al. 2019, from the `cect` package)
imported through `cxgraph import-connectome` and compared with the source files."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cxgraph.graph import queries as Q

cect = pytest.importorskip("cect")


def cook2019_files(tmp_path):
    """Edge list + neuron table written from cect's Cook 2019 hermaphrodite dataset."""
    from cect.readers import Cook2019HermReader

    ds = Cook2019HermReader.get_instance(from_cache=True)
    nodes = list(ds.nodes)
    rows = []
    for synclass, kind in (("Generic_CS", "chemical"), ("Generic_GJ", "electrical")):
        m = np.asarray(ds.connections[synclass])
        for i, j in zip(*np.nonzero(m), strict=True):
            rows.append({"pre": nodes[i], "post": nodes[j], "weight": int(m[i, j]),
                         "type": kind})
    edges = tmp_path / "cook2019_herm_edges.csv"
    neurons = tmp_path / "cook2019_herm_neurons.csv"
    pl.DataFrame(rows).write_csv(edges)
    pl.DataFrame({"name": nodes}).write_csv(neurons)
    return edges, neurons


def test_cook2019_hermaphrodite_import(graph, tmp_path, monkeypatch):
    from cxgraph.cli import app

    edges_path, neurons_path = cook2019_files(tmp_path)
    for k, v in (("NEO4J_URI", graph.conn.uri), ("NEO4J_USER", graph.conn.user),
                 ("NEO4J_PASSWORD", graph.conn.password)):
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(app, ["import-connectome", "--workspace", str(tmp_path / "ws"),
                                   "--edges", str(edges_path), "--neurons", str(neurons_path),
                                   "--dataset", "cook2019-herm"])
    assert res.exit_code == 0, res.output
    assert "FAIL" not in res.output

    edges = pl.read_csv(edges_path)
    neurons = pl.read_csv(neurons_path)
    chem = edges.filter(pl.col("type") == "chemical")
    gap = edges.filter(pl.col("type") == "electrical")
    assert neurons.height > 300 and chem.height > 4000  # the real dataset, not a stub

    q = graph.read
    assert q("MATCH (s:Segment) RETURN count(s)").rows[0][0] == neurons.height
    assert q("MATCH (n:Neuron) WHERE n.name IS NOT NULL RETURN count(n)").rows[0][0] == \
        neurons.height
    assert q("MATCH ()-[e:ConnectsTo]->() RETURN count(e)").rows[0][0] == chem.height
    assert q("MATCH ()-[e:ConnectsTo]->() RETURN sum(e.weight)").rows[0][0] == \
        chem["weight"].sum()
    assert q("MATCH ()-[e:GapJunction]->() RETURN count(e), sum(e.weight)").rows[0] == \
        [gap.height, gap["weight"].sum()]
    assert q("MATCH (m:Meta) RETURN m.dataset, m.synapseLevel").rows == [["cook2019-herm",
                                                                         False]]

    # top downstream partners of named neurons, from the graph and from the file
    ids = dict(q("MATCH (s:Segment) RETURN s.name, s.bodyId").rows)
    for name in ("AVAL", "AVAR", "AVBL", "ASHL", "PVCR"):
        expected = (chem.filter(pl.col("pre") == name).sort(["weight", "post"],
                                                            descending=[True, False])
                    .head(5).select("post", "weight").rows())
        got = q("MATCH (a:Segment {bodyId: $id})-[e:ConnectsTo]->(b) "
                "RETURN b.name, e.weight ORDER BY e.weight DESC, b.name LIMIT 5",
                {"id": ids[name]}).rows
        assert [tuple(r) for r in got] == expected, name
        # the named query agrees (both directions, weights)
        rows = Q.run(graph, "partners", {"bodyId": ids[name]}).records()
        down = {r["partner"]: r["weight"] for r in rows if r["direction"] == "downstream"}
        assert sum(down.values()) == chem.filter(pl.col("pre") == name)["weight"].sum()

    # re-importing the same files changes nothing
    res2 = CliRunner().invoke(app, ["import-connectome", "--workspace", str(tmp_path / "ws"),
                                    "--edges", str(edges_path), "--neurons", str(neurons_path),
                                    "--dataset", "cook2019-herm", "--no-check"])
    assert res2.exit_code == 0, res2.output
    assert json.loads(res2.output.splitlines()[-1])["reloaded"] is True
