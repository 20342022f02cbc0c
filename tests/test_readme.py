"""The README as executed: its shell blocks run as written in a fresh copy after `make demo`
(scripts/check_readme.py); and the block parser on a tiny text with a known answer."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from cxgraph.config import Neo4jParams
from cxgraph.neo4j_server import ManagedServer, external_connection

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_readme", ROOT / "scripts/check_readme.py")
check_readme = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(check_readme)  # type: ignore[union-attr]


def test_shell_blocks_are_the_sh_blocks_not_marked_not_run():
    text = "\n".join([
        "<!-- not run: setup -->", "```sh", "make demo", "```",
        "```text", "cxgraph run -w WS", "```",
        "```sh", "export A=1", "echo $A", "```",
        "```cypher", "MATCH (n) RETURN n", "```",
        "```bash", "echo two", "```"])
    assert check_readme.shell_blocks(text) == ["export A=1\necho $A", "echo two"]


@pytest.mark.readme  # `make check-readme` (CI runs it after `make test`): ~5 min, a demo
@pytest.mark.skipif(os.environ.get("CXGRAPH_SKIP_README") == "1",
                    reason="CXGRAPH_SKIP_README=1 (the README check takes several minutes)")
def test_every_readme_command_runs_as_written_after_make_demo(tmp_path):
    clone = check_readme.fresh_copy(tmp_path / "clone")
    try:
        res = check_readme.run(clone, demo=True)
        assert res.returncode == 0, f"{res.stderr[-4000:]}\n--- stdout ---\n{res.stdout[-2000:]}"
        assert "reused" in res.stdout  # the re-run in the README recomputes nothing
    finally:
        left = []
        if not external_connection(Neo4jParams()):
            for neo in clone.glob("*/neo4j"):
                server = ManagedServer(neo, Neo4jParams())
                if server.pid():
                    left.append(str(neo))
                    server.stop()
        shutil.rmtree(clone, ignore_errors=True)
    assert not left, f"Neo4j servers left running by the README's commands: {left}"
