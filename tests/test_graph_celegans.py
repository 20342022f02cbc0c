"""A real connectome: C. elegans hermaphrodite (Cook et al. 2019, from the `cect` package)
imported through `cxgraph import-connectome` and compared with cect's own matrices.

The expectations are computed here from ``ds.connections`` (cect's adjacency matrices)
and ``cect.Cells`` (its cell lists), not from the tables the import writes."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cxgraph.errors import InputDataError
from cxgraph.graph import queries as Q
from cxgraph.graph.import_connectome import snapshot_from_edge_list

cect = pytest.importorskip("cect")

AVAL_QUERY = ("MATCH (a:Neuron {instance:'AVAL'})-[w:ConnectsTo]->(b) "
              "RETURN b.instance, w.weight ORDER BY w.weight DESC LIMIT 5")


@pytest.fixture(scope="module")
def cook():
    """cect's Cook 2019 hermaphrodite: (cell names, chemical matrix, gap-junction matrix)."""
    from cect.readers import Cook2019HermReader

    ds = Cook2019HermReader.get_instance(from_cache=True)
    return (list(ds.nodes), np.asarray(ds.connections["Generic_CS"]),
            np.asarray(ds.connections["Generic_GJ"]))


def _cli(store, args):
    from cxgraph.cli import app

    with pytest.MonkeyPatch.context() as mp:
        for k, v in (("NEO4J_URI", store.conn.uri), ("NEO4J_USER", store.conn.user),
                     ("NEO4J_PASSWORD", store.conn.password)):
            mp.setenv(k, v)
        return CliRunner().invoke(app, ["import-connectome", *args])


@pytest.fixture(scope="module")
def imported(neo4j_connection, tmp_path_factory):
    """One import of Cook 2019 through `--from-cect`, shared by the tests below."""
    from cxgraph.graph import GraphStore

    tmp = tmp_path_factory.mktemp("cook")
    store = GraphStore(neo4j_connection, batch_size=500, query_timeout_s=60.0)
    store.clear()
    res = _cli(store, ["--workspace", str(tmp / "ws"), "--from-cect", "Cook2019Herm",
                       "--save-tables", str(tmp / "tables"), "--dataset", "cook2019-herm"])
    assert res.exit_code == 0, res.output
    yield store, tmp, res.output
    store.close()


def test_aval_query_returns_the_file_answer(imported, cook):
    store, _, _ = imported
    nodes, cs, _ = cook
    row = cs[nodes.index("AVAL")]
    partners = sorted(((nodes[j], int(row[j])) for j in np.nonzero(row)[0]),
                      key=lambda p: (-p[1], p[0]))
    got = [tuple(r) for r in store.read(AVAL_QUERY).rows]
    # the analyst's query as written (ties at the cut may come in any order) ...
    assert [w for _, w in got] == [w for _, w in partners[:5]]
    assert set(got) <= set(partners) and got[0] == partners[0]
    # ... and with a tie-break, exactly the file's top five
    exact = store.read(AVAL_QUERY.replace("DESC", "DESC, b.instance")).rows
    assert [tuple(r) for r in exact] == partners[:5]
    # the named query agrees, both directions
    aval = store.read("MATCH (a:Neuron {instance: 'AVAL'}) RETURN a.bodyId").rows[0][0]
    rows = Q.run(store, "partners", {"bodyId": aval}).records()
    down = {r["partner"]: r["weight"] for r in rows if r["direction"] == "downstream"}
    assert sum(down.values()) == int(row.sum())


def test_neurons_muscles_and_other_cells_are_told_apart(imported, cook):
    from cect import Cells

    store, _, _ = imported
    nodes, cs, _ = cook
    q = store.read
    neurons = sorted(n for n in nodes if Cells.is_any_neuron(n))
    muscles = sorted(n for n in nodes if Cells.is_known_muscle(n))
    assert len(neurons) == 302 and len(muscles) > 90  # the real dataset, not a stub
    assert sorted(r[0] for r in q("MATCH (n:Neuron) RETURN n.instance").rows) == neurons
    assert sorted(r[0] for r in q("MATCH (s:Segment {kind: 'muscle'}) WHERE NOT s:Neuron "
                                  "RETURN s.instance").rows) == muscles
    assert q("MATCH (s:Segment) RETURN count(s)").rows[0][0] == len(nodes)
    assert q("MATCH (s:Segment {kind: 'other'}) RETURN count(s)").rows[0][0] == \
        len(nodes) - len(neurons) - len(muscles)
    # type = cell class: 302 neurons in WormAtlas's 118 classes
    assert q("MATCH (n:Neuron) RETURN count(DISTINCT n.type)").rows[0][0] == 118
    assert sorted(r[0] for r in q("MATCH (n:Neuron {type: 'AVA'}) RETURN n.instance").rows) \
        == ["AVAL", "AVAR"]
    rec = q("MATCH (s:Segment {instance: 'MDL07'}) RETURN s.type AS type, s.status AS status, "
            "s.class AS class").records()[0]
    assert rec == {"type": "MDL", "status": "Traced", "class": "body wall muscle"}
    # pre/post (connection level: chemical weight out/in) beside downstream/upstream
    i = nodes.index("AVAL")
    aval = q("MATCH (a:Neuron {instance: 'AVAL'}) RETURN a.pre AS pre, a.post AS post, "
             "a.downstream AS down, a.upstream AS up, a.synweight AS sw").records()[0]
    assert aval == {"pre": int(cs[i].sum()), "post": int(cs[:, i].sum()),
                    "down": int(cs[i].sum()), "up": int(cs[:, i].sum()),
                    "sw": int(cs[i].sum() + cs[:, i].sum())}


def test_chemical_and_electrical_counted_apart(imported, cook):
    store, _, output = imported
    _, cs, gj = cook
    assert (gj == gj.T).all()  # cect lists each gap junction both ways
    pairs = np.triu(gj)  # one per cell pair, self-pairs included
    chem_n, chem_w = int((cs > 0).sum()), int(cs.sum())
    elec_n, elec_w = int((pairs > 0).sum()), int(pairs.sum())
    assert f"chemical connections (ConnectsTo): {chem_n}, total weight {chem_w}" in output
    assert (f"electrical connections (GapJunction, one per cell pair): {elec_n}, "
            f"total weight {elec_w}") in output
    report = json.loads(next(ln for ln in output.splitlines() if ln.startswith("{")))
    assert (report["connections"], report["gap_junctions"]) == (chem_n, elec_n)
    q = store.read
    assert q("MATCH ()-[e:ConnectsTo]->() RETURN count(e), sum(e.weight)").rows[0] == \
        [chem_n, chem_w]
    assert q("MATCH ()-[g:GapJunction]->() RETURN count(g), sum(g.weight)").rows[0] == \
        [elec_n, elec_w]
    assert "FAIL" not in output
    assert q("MATCH (m:Meta) RETURN m.dataset, m.synapseLevel").rows == [["cook2019-herm",
                                                                         False]]


def _state(store):
    return store.read("MATCH (n) RETURN count(n) AS nodes, "
                      "count { MATCH ()-[r]->() RETURN r } AS rels").records()[0]


def test_bad_neuron_tables_write_nothing(imported, tmp_path):
    store, tmp, _ = imported
    before = _state(store)
    edges = tmp / "tables" / "edges.csv"
    neurons = pl.read_csv(tmp / "tables" / "neurons.csv")
    no_name = tmp_path / "no_name.csv"
    neurons.rename({"name": "cell_name"}).write_csv(no_name)
    typo = tmp_path / "typo.tsv"
    neurons.with_columns(pl.col("name").replace("AVAL", "AVAl")).write_csv(typo, separator="\t")
    for path, words in ((no_name, ["`name` column", "cell_name"]), (typo, ["AVAL", "1 cell(s)"])):
        ws = tmp_path / f"ws-{path.stem}"
        res = _cli(store, ["--workspace", str(ws), "--edges", str(edges),
                           "--neurons", str(path)])
        assert res.exit_code != 0 and isinstance(res.exception, InputDataError), res.output
        assert str(path.resolve()) in str(res.exception)
        assert all(w in str(res.exception) for w in words), str(res.exception)
        assert not ws.exists()
    assert _state(store) == before


def test_saved_tables_reimport_as_the_same_version(imported):
    store, tmp, _ = imported
    res = _cli(store, ["--workspace", str(tmp / "ws"), "--edges", str(tmp / "tables/edges.csv"),
                       "--neurons", str(tmp / "tables/neurons.csv"),
                       "--dataset", "cook2019-herm", "--no-check"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.splitlines()[-1])["reloaded"] is True


# --- small tables: extra columns, validation (the graph test clears the database) -------

EDGES = pl.DataFrame({"pre": ["A", "B", "A", "B", "C"], "post": ["B", "C", "B", "A", "C"],
                      "weight": [3, 1, 2, 2, 4],
                      "type": ["chemical", "chemical", "gap", "gap", "electrical"]})


def _neurons() -> pl.DataFrame:
    return pl.DataFrame({"Name": ["A", "B", "C"], "TYPE": ["a", "b", "m"],
                         "kind": ["neuron", "Neuron", "muscle"],
                         "neurotransmitter": ["ACh", None, "GABA"], "somaX": [1.5, 2.0, None],
                         "isHub": [True, False, False], "lineageDepth": [9, 10, 11]})


def test_extra_columns_round_trip(on_test_server, tmp_path):
    graph = on_test_server
    edges, neurons = tmp_path / "e.csv", tmp_path / "n.parquet"
    EDGES.write_csv(edges)
    _neurons().write_parquet(neurons)
    res = _cli(graph, ["--workspace", str(tmp_path / "ws"), "--edges", str(edges),
                       "--neurons", str(neurons)])
    assert res.exit_code == 0, res.output
    got = graph.read("MATCH (s:Segment) RETURN s.name AS name, s.type AS type, s.kind AS kind, "
                     "s:Neuron AS neuron, s.instance AS instance, s.neurotransmitter AS nt, "
                     "s.somaX AS x, s.isHub AS hub, s.lineageDepth AS depth, "
                     "s.post AS post ORDER BY name").records()
    assert got == [
        {"name": "A", "type": "a", "kind": "neuron", "neuron": True, "instance": "A",
         "nt": "ACh", "x": 1.5, "hub": True, "depth": 9, "post": 0},
        {"name": "B", "type": "b", "kind": "neuron", "neuron": True, "instance": "B",
         "nt": None, "x": 2.0, "hub": False, "depth": 10, "post": 3},
        {"name": "C", "type": "m", "kind": "muscle", "neuron": False, "instance": "C",
         "nt": "GABA", "x": None, "hub": False, "depth": 11, "post": 1}]
    assert graph.read("MATCH (s:Segment {name: 'B'}) RETURN keys(s)").rows[0][0].count(
        "neurotransmitter") == 0  # a null cell is no property, not a "None" string
    gaps = graph.read("MATCH (a)-[g:GapJunction]->(b) RETURN a.name, b.name, g.weight "
                      "ORDER BY a.name").rows
    assert gaps == [["A", "B", 2], ["C", "C", 4]]  # A-B listed both ways: one junction


@pytest.mark.parametrize("change, message", [
    (lambda n: n.drop("Name"), "needs a `name` column"),
    (lambda n: n.filter(pl.col("Name") != "C"), "['C']"),
    (lambda n: n.with_columns(pl.lit("glia").alias("kind")), "`kind` must be one of"),
    (lambda n: n.with_columns(pl.lit(1).alias("upstream")), "['upstream'] would overwrite"),
    (lambda n: n.with_columns(pl.lit("x").alias("type")), "given more than once"),
    (lambda n: pl.concat([n, n.head(1)]), "`name` repeats: ['A']"),
])
def test_bad_neuron_table_is_a_clear_error(change, message):
    with pytest.raises(InputDataError, match="neuron table") as e:
        snapshot_from_edge_list(EDGES, change(_neurons()))
    assert message in str(e.value)


def test_edges_by_body_id_need_every_id_in_the_table():
    edges = pl.DataFrame({"pre": [10, 11], "post": [11, 12], "weight": [1, 2]})
    table = pl.DataFrame({"bodyId": [10, 11], "name": ["A", "B"], "kind": ["neuron", "muscle"]})
    with pytest.raises(InputDataError, match=r"1 body id\(s\) .* e.g. \[12\]"):
        snapshot_from_edge_list(edges, table)
    snap = snapshot_from_edge_list(edges, table.vstack(pl.DataFrame(
        {"bodyId": [12], "name": ["C"], "kind": ["other"]})))
    assert snap.body_table().select("body_id", "kind", "pre", "post").rows() == [
        (10, "neuron", 1, 0), (11, "muscle", 2, 1), (12, "other", 0, 2)]


def test_gap_junction_weights_must_agree_both_ways():
    edges = EDGES.with_columns(pl.when(pl.col("pre") == "B").then(5).otherwise(pl.col("weight"))
                               .alias("weight"))
    with pytest.raises(InputDataError, match=r"listed both ways with different weights.*'A', "
                                             r"'B', 2, 5"):
        snapshot_from_edge_list(edges, _neurons())


def test_cell_type_rule():
    from cxgraph.graph.celegans import cell_kind, cell_type

    cells = ("AVAL", "VB11", "IL1DL", "IL1L", "RMED", "RMDDL", "SABVL", "SABD", "RIVL", "RID",
             "AVDL", "I2R", "I3", "MVL03", "pm2VL")
    assert [cell_type(c) for c in cells] == ["AVA", "VB", "IL1", "IL1", "RME", "RMD", "SAB",
                                             "SAB", "RIV", "RID", "AVD", "I2", "I3", "MVL",
                                             "pm2"]
    assert [cell_kind(c) for c in ("AVAL", "MVL03", "pm2VL", "GLRL", "hyp")] == \
        ["neuron", "muscle", "muscle", "other", "other"]
