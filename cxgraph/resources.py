"""The one place that finds cxgraph's resource folders: ``schema/`` and ``queries/``.

In a source checkout they sit at the top of the tree (the layout of the design
card). An installed wheel carries them as data files under
``<prefix>/share/cxgraph/`` (``[tool.setuptools.data-files]`` in pyproject.toml).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from cxgraph.errors import CxgraphError

SOURCE_ROOT = Path(__file__).resolve().parent.parent
NAMES = ("schema", "queries")


@functools.cache
def resource_dir(name: str) -> Path:
    """The folder ``name`` (one of ``NAMES``), from the source tree or the installed data files."""
    if name not in NAMES:
        raise CxgraphError(f"unknown resource folder {name!r}; expected one of {NAMES}")
    for root in (SOURCE_ROOT, Path(sys.prefix) / "share" / "cxgraph"):
        if (root / name).is_dir():
            return root / name
    raise CxgraphError(
        f"cxgraph's {name}/ folder is missing (looked in {SOURCE_ROOT} and "
        f"{Path(sys.prefix) / 'share' / 'cxgraph'}); reinstall cxgraph")


def schema_dir(kind: str) -> Path:
    """``schema/<kind>``: ``neo4j`` (Cypher), ``provenance`` (DuckDB SQL), ``graphql`` (SDL)."""
    return resource_dir("schema") / kind
