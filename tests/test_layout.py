"""The layout keeps its promises: the core never imports the pipeline, no import cycles,
resource files found one way (also from an installed wheel)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORE = ("cxgraph.config", "cxgraph.workspace", "cxgraph.provenance", "cxgraph.ids",
        "cxgraph.params", "cxgraph.neo4j_server", "cxgraph.graph.store", "cxgraph.graph.loader",
        "cxgraph.api.app", "cxgraph.api.schema")


def test_core_never_imports_the_pipeline():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CORE)
            + "print(sorted(m for m in sys.modules if m == 'pipeline' or "
              "m.startswith('pipeline.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]", out.stdout


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere (function-level imports included,
    ``if TYPE_CHECKING:`` blocks not)."""
    mods = {}
    for p in [*REPO.glob("cxgraph/**/*.py"), *REPO.glob("pipeline/**/*.py")]:
        name = ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        mods[name] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        tree = ast.parse(p.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                for a in node.names:
                    full = f"{base}.{a.name}"
                    graph[m].add(full if full in mods else base)
        graph[m] &= set(mods)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = import_graph()
    assert cycles(graph) == []
    # and the direction the design asks for: only the command line reaches the pipeline
    core = [m for m in graph if m.startswith("cxgraph.") and not m.startswith(
        ("cxgraph.commands", "cxgraph.cli"))]
    assert not [m for m in core if any(d.startswith("pipeline") for d in graph[m])]


def test_wheel_carries_the_resource_files(tmp_path):
    src = tmp_path / "src"  # build from a copy: a build writes build/ and *.egg-info
    src.mkdir()
    for item in ("pyproject.toml", "README.md", "cxgraph", "pipeline", "schema", "queries"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, src / item)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("cxgraph-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if ".data/data/share/cxgraph/" in n]
    for folder, ext in (("schema/neo4j", ".cypher"), ("schema/provenance", ".sql"),
                        ("schema/graphql", ".graphql"), ("queries", ".cypher")):
        want = sorted(p.name for p in (REPO / folder).glob(f"*{ext}"))
        got = sorted(n.rsplit("/", 1)[1] for n in data if f"share/cxgraph/{folder}/" in n)
        assert got == want, folder
    assert "cxgraph/resources.py" in names and "pipeline/engine/run.py" in names
