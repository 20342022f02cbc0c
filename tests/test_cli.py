"""The command line as a user meets it: help text, a forgotten -w, quiet output, --file, and
no Neo4j server left running unannounced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxgraph.config import Neo4jParams
from cxgraph.neo4j_server import external_connection, managed_server
from cxgraph.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def cxgraph(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run([sys.executable, "-m", "cxgraph", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_help_shows_the_program_name_and_keeps_brackets(tmp_path):
    out = cxgraph("serve", "--help", cwd=tmp_path).stdout
    assert out.startswith("Usage: cxgraph serve")
    assert "[api] host" in out and "<bool>" not in out and "--keep-server" in out


def test_a_forgotten_workspace_is_an_error_and_creates_nothing(tmp_path):
    for args in (["cypher", "RETURN 1"], ["check"], ["load"], ["neo4j", "status"], ["view"],
                 ["serve"], ["token", "list"]):
        res = cxgraph(*args, cwd=tmp_path)
        assert res.returncode != 0 and "Missing option '--workspace'" in res.stderr, args
    res = cxgraph("cypher", "-w", "nowhere", "RETURN 1", cwd=tmp_path)
    assert res.returncode == 1 and "not a cxgraph workspace" in res.stderr
    assert list(tmp_path.iterdir()) == []  # no ./workspace, no ./nowhere, no server


def test_no_log_noise_at_the_default_level_and_logs_with_v(tmp_path):
    res = cxgraph("init", str(tmp_path / "ws"), cwd=tmp_path)
    assert res.returncode == 0 and res.stderr == "", res.stderr  # e.g. "NumExpr defaulting"
    assert res.stdout.startswith("workspace ready")


def test_cypher_from_a_file_with_parameters(tmp_path, neo4j_connection):
    ws = Workspace.create(tmp_path / "ws")
    query = tmp_path / "q.cypher"
    query.write_text("// the parameter back\nRETURN $n + 1 AS next, $name AS name\n")
    env = {"NEO4J_URI": neo4j_connection.uri, "NEO4J_USER": neo4j_connection.user,
           "NEO4J_PASSWORD": neo4j_connection.password}
    res = cxgraph("cypher", "-w", str(ws.root), "--file", str(query), "-p", "n=41",
                  "-p", "name=AVAL", "-f", "csv", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["next,name", "42,AVAL"]
    both = cxgraph("cypher", "-w", str(ws.root), "RETURN 1", "--file", str(query),
                   cwd=tmp_path, env=env)
    assert both.returncode == 1 and "one of them" in both.stderr


@pytest.mark.skipif(bool(external_connection(Neo4jParams())),
                    reason="NEO4J_URI names an external server: nothing is started")
def test_a_server_a_command_starts_is_announced_and_stopped(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.set_config(ws.config.with_overrides(["neo4j.heap_mb=512", "neo4j.pagecache_mb=128"]))
    res = cxgraph("cypher", "-w", str(ws.root), "RETURN 7 AS seven", "-f", "csv", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["seven", "7"]
    assert "starting the workspace's Neo4j server" in res.stderr
    assert "Neo4j stopped" in res.stderr
    assert managed_server(ws).pid() is None  # nothing left running


def test_a_region_cannot_take_a_whole_volume_parameter_and_nothing_is_written(tmp_path):
    assert cxgraph("init", str(tmp_path / "ws"), cwd=tmp_path).returncode == 0
    before = (tmp_path / "ws" / "cxgraph.toml").read_text()
    for cmd in (["rerun", "--from-stage", "align"], ["run"]):
        res = cxgraph(*cmd, "-w", str(tmp_path / "ws"), "--region", "0:8,0:64,0:64",
                      "--set", "align.neighbours=4", cwd=tmp_path)
        assert res.returncode != 0 and "align.neighbours: cannot be set for a region" in \
            res.stderr and "agglomerate.threshold" in res.stderr, res.stderr
    assert (tmp_path / "ws" / "cxgraph.toml").read_text() == before
    res = cxgraph("run", "-w", str(tmp_path / "ws"), "--region", "0:8,0:64,0:64",
                  "--set", "agglomerate.threshold=0.3", "--stages", "smooth", cwd=tmp_path)
    # (smooth has no input here and fails, but the regional value is accepted and kept)
    assert "cannot be set for a region" not in res.stderr
    assert Workspace.open(tmp_path / "ws").config.regional[0].assignments == (
        "agglomerate.threshold=0.3",)
