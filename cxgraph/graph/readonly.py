"""What the analyst entry (``GraphStore.analyst``: ``cxgraph cypher``, ``POST /cypher``)
lets through: a policy on the query's plan, checked before the query runs.

The plan (``EXPLAIN``) is walked, not the query text, so spelling tricks (backticks,
comments, case) do not matter. Refused:

- any query whose planner type is not read-only (``r``), except the harmless
  DBMS-typed procedures in ``DBMS_READ`` (``CALL dbms.components()``);
- ``LOAD CSV`` (it fetches URLs and files: exfiltration, and reading the API's own
  endpoints);
- ``SHOW``/``TERMINATE`` commands other than ``SHOW INDEXES|CONSTRAINTS|FUNCTIONS|
  PROCEDURES``: Community edition has no restricted users, so another user's
  transactions (query text, client address) must not be visible or endable here;
- procedures and namespaced functions outside the allowlist: built-in schema
  introspection and APOC that only computes on values or the graph (the same APOC
  namespaces the managed server loads at all, ``neo4j_server.APOC_ALLOWLIST``) —
  never ``apoc.load``/``import``/``export`` (URLs, files), ``apoc.cypher``/
  ``periodic`` (unchecked Cypher), ``apoc.systemdb``, ``apoc.trigger``, ``apoc.lock``.

Example::

    >>> refusal({"operatorType": "LoadCSV@neo4j", "args": {}}, "r")
    'LOAD CSV reads URLs and files; analyst Cypher may only read the graph'
    >>> refusal({"operatorType": "ProcedureCall@neo4j",
    ...          "args": {"Details": "db.labels() :: (label :: STRING)"}}, "r") is None
    True
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import Any

from cxgraph.neo4j_server import APOC_ALLOWLIST

# Built-in procedures an analyst may call (schema introspection; server version).
BUILTIN_PROCEDURES = (
    "db.labels", "db.relationshipTypes", "db.propertyKeys", "db.schema.*", "db.info",
    "db.ping", "dbms.components", "dbms.info",
)
# Procedures the planner types as DBMS ("s") that only report, so they may run here.
DBMS_READ = ("dbms.components", "dbms.info", "db.info", "db.ping")
# Built-in function namespaces (e.g. point.withinBBox, duration.between).
BUILTIN_FUNCTION_NS = ("point", "date", "datetime", "localdatetime", "time", "localtime",
                       "duration", "vector", "db", "string")
SHOW_ALLOWED = {"ShowIndexes", "ShowConstraints", "ShowFunctions", "ShowProcedures"}
ALLOWED_CALLS = BUILTIN_PROCEDURES + APOC_ALLOWLIST

_PROC = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\(")
_FUNC = re.compile(r"(?<![\w.$`])([A-Za-z_]\w*(?:\.\w+)+)\s*\(")


def operators(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(operator name without its @runtime suffix, Details text) of every plan node."""
    stack = [plan]
    while stack:
        node = stack.pop()
        op = str(node.get("operatorType", "")).split("@")[0]
        yield op, str((node.get("args") or {}).get("Details", ""))
        stack.extend(node.get("children") or ())


def allowed(name: str, patterns: tuple[str, ...] = ALLOWED_CALLS) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def refusal(plan: dict[str, Any], query_type: str) -> str | None:
    """Why the analyst entry refuses a query with this plan and type, or None."""
    procedures = []
    for op, details in operators(plan):
        if op == "LoadCSV":
            return "LOAD CSV reads URLs and files; analyst Cypher may only read the graph"
        if op.startswith("Terminate") or (op.startswith("Show") and op not in SHOW_ALLOWED):
            command = re.sub(r"(?<!^)([A-Z])", r" \1", op).upper()
            return (f"{command} is an administration command (it shows or ends other users' "
                    "work); it is not available to analyst Cypher")
        if op == "ProcedureCall":
            m = _PROC.match(details)
            name = m.group(1) if m else details.split("(")[0].strip()
            if not allowed(name):
                return (f"procedure {name} is not on the analyst allowlist (schema "
                        "introspection and APOC on values and paths; see "
                        "cxgraph/graph/readonly.py)")
            procedures.append(name)
            details = details[m.end():] if m else ""  # its arguments may call functions
        for fn in _FUNC.findall(details):
            ns = fn.split(".")[0]
            if ns in BUILTIN_FUNCTION_NS or ns.lower() in BUILTIN_FUNCTION_NS:
                continue
            if not allowed(fn, APOC_ALLOWLIST):
                return (f"function {fn} is not on the analyst allowlist (APOC on values and "
                        "paths only; no apoc.load/import/export/cypher)")
    if query_type == "r":
        return None
    if query_type == "s" and procedures and all(allowed(p, DBMS_READ) for p in procedures):
        return None
    kind = {"rw": "reads and writes", "w": "writes", "s": "changes the schema or the DBMS"}
    return (f"this query {kind.get(query_type, f'has type {query_type!r}')}; only reads are "
            "allowed here (use `cxgraph load` to change the graph)")
