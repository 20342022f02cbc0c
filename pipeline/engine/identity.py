"""What a stage run *is*: stamps on outputs, content hashes of inputs, code fingerprints.

- **Stamps.** Every output the engine writes carries the stage run that wrote it
  and its content hash: arrays in their zarr attributes (``attrs["cxgraph"]``),
  tables in their Parquet schema metadata (key ``cxgraph``). An output counts
  as a run's output only if its stamp names that run; reading a stamp reads one
  small file, never the data.
- **Input hashes.** A stamped input's hash is the one in its stamp (built from
  chunk hashes as blocks were written). An unstamped input (made by hand or by
  another tool) is hashed in full; an external directory (the tile source) by
  its file names, sizes and modification times plus the bytes of its small
  files (the manifest), as ``make`` would.
- **Code fingerprint.** sha256 of the source of the modules a stage's functions
  live in and every ``pipeline`` module they import, transitively (the engine
  and the stage graph — ``pipeline.engine``, ``pipeline.registry`` — and the
  packages' registration ``__init__`` files excluded), plus ``cxgraph.ids`` (the
  id layout is part of what a stage outputs) and any module the stage names in
  ``code``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from cxgraph.errors import WorkspaceError
from cxgraph.provenance import content_hash
from cxgraph.workspace import Workspace
from pipeline.engine.stage import Artifact, Stage

STAMP_KEY = "cxgraph"
SMALL_FILE = 1 << 20  # source files up to this size are hashed by content


# --- stamps ---------------------------------------------------------------------------


def stamp_array(path: Path, stamp: dict[str, Any]) -> None:
    """Stamp the array (or the OME-Zarr image group of a volume) at ``path``."""
    node = zarr.open(str(path), mode="r+")
    node.attrs[STAMP_KEY] = stamp


def read_stamp(ws: Workspace, artifact: Artifact) -> dict[str, Any] | None:
    """The stamp of an output on disk, {} if it exists unstamped, None if it does not exist."""
    if artifact.kind == "array":
        meta = ws.zarr_path / artifact.name / "zarr.json"
        if not meta.exists():
            return None
        return json.loads(meta.read_text()).get("attributes", {}).get(STAMP_KEY) or {}
    if artifact.kind == "table":
        path = ws.table_path(artifact.name)
        if not path.exists():
            return None
        meta = pq.read_schema(path).metadata or {}
        raw = meta.get(STAMP_KEY.encode())
        return json.loads(raw) if raw else {}
    raise WorkspaceError(f"{artifact}: no stamp for this kind of artifact")


def with_stamp(table: pa.Table, stamp: dict[str, Any]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[STAMP_KEY.encode()] = json.dumps(stamp, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def table_hash(table: pa.Table) -> str:
    """sha256 of a table's schema and values (Arrow IPC of its columns, metadata dropped)."""
    table = table.replace_schema_metadata(None).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def blocks_hash(block_hashes: dict[int, str]) -> str:
    """An output's hash from its blocks' hashes (sha256 of the sorted "block:sha" lines)."""
    text = "\n".join(f"{b}:{h}" for b, h in sorted(block_hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def chunks_hash(chunk_hashes: dict[str, str]) -> str:
    """One block's hash of an output from the hashes of the chunks it wrote."""
    text = "\n".join(f"{k}:{v}" for k, v in sorted(chunk_hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


# --- inputs ---------------------------------------------------------------------------


def directory_fingerprint(path: Path) -> str:
    """sha256 over every file's relative name, size and mtime, and the bytes of small files."""
    path = Path(path)
    if not path.is_dir():
        raise WorkspaceError(f"{path}: input directory does not exist")
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        if st.st_size <= SMALL_FILE:
            h.update(f.read_bytes())
    return h.hexdigest()


def describe_input(ws: Workspace, artifact: Artifact, sources: dict[str, Path],
                   producers: dict[Artifact, str]) -> dict[str, str]:
    """{path, sha256, stage_run_id} of one input; a clear error when it is missing.

    ``producers`` maps artifact names to the stage that writes them (for the message).
    """
    if artifact.kind == "source":
        if artifact.name not in sources:
            raise WorkspaceError(
                f"this stage reads the source {artifact.name!r} (e.g. --input DIR for the tile "
                "directory) and none was given or recorded")
        p = Path(sources[artifact.name]).resolve()
        return {"path": str(p), "sha256": directory_fingerprint(p)}
    stamp = read_stamp(ws, artifact)
    path = ws.array_path(artifact.name) if artifact.kind == "array" else ws.table_path(
        artifact.name)
    if stamp is None:
        who = producers.get(artifact)
        raise WorkspaceError(
            f"{ws.root} has no {artifact}" + (f"; run the stage {who!r} that writes it first"
                                              if who else ""))
    if stamp.get("output_hash"):
        return {"path": str(path), "sha256": stamp["output_hash"],
                "stage_run_id": stamp.get("stage_run_id", "")}
    return {"path": str(path), "sha256": content_hash(path)}  # made outside the engine


# --- code -----------------------------------------------------------------------------


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


# Infrastructure, not a stage's algorithm: the engine and the stage graph.
_NOT_CODE = ("pipeline.engine", "pipeline.registry")


def _in_fingerprint(name: str) -> bool:
    if name == "cxgraph.ids":
        return True
    return name.startswith("pipeline.") and not any(
        name == n or name.startswith(n + ".") for n in _NOT_CODE)


def _imports(name: str, path: Path) -> set[str]:
    """Project modules ``name`` imports (``from pkg import mod`` counts mod if it is one)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    # Package __init__ files are only named when imported as such (``from pipeline.x import
    # y`` where y is a module counts y, not x/__init__.py, which holds the registrations).
    return {m for m in found if _in_fingerprint(m) and _module_file(m) is not None
            and not (m.rpartition(".")[0] == "" or any(f.startswith(m + ".") for f in found)
                     and Path(_module_file(m) or "").name == "__init__.py")}


@functools.cache
def _closure(roots: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        todo.extend(_imports(name, path) - set(seen))
    return tuple(sorted(seen.items()))


def code_modules(stage: Stage) -> list[str]:
    """The modules in ``stage``'s code fingerprint, sorted."""
    return [m for m, _ in _closure(_roots(stage))]


def code_fingerprint(stage: Stage) -> str:
    """sha256 of the sources of the stage's modules (see the module docstring)."""
    return hashlib.sha256(json.dumps(_closure(_roots(stage))).encode()).hexdigest()


def _roots(stage: Stage) -> tuple[str, ...]:
    mods: Iterable[str] = {f.__module__ for f in stage.functions()} | set(stage.code)
    return tuple(sorted(mods))
