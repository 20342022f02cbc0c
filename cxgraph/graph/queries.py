"""Named Cypher queries from ``queries/*.cypher`` (one per file).

Each file starts with a comment header: the question it answers (first
paragraph), then one line per parameter::

    // Which bodies does this body connect to, upstream and downstream?
    //
    // $bodyId: int - the body
    // $asOf: int? = null - version to answer for (null: the current version)

``int?`` means the value may be null; ``= <json>`` is the default. The looser
form ``// Parameters:`` then ``//   $name  description`` is read too (no type,
required). The API and the CLI run them through ``GraphStore`` with parameters, never pasted.
"""

from __future__ import annotations

import dataclasses
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from cxgraph.errors import GraphError
from cxgraph.resources import resource_dir

_PARAM = re.compile(r"^\$(\w+)\s*:\s*([\w<>\[\]?]+)\s*(?:=\s*(.+?))?\s+-\s+(.*)$")
_LOOSE_PARAM = re.compile(r"^((?:\$\w+\s*,\s*)*\$\w+)\s+(.*)$")  # `$name  text`
_NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class QueryParam:
    name: str
    type: str  # int, float, str, bool, list<int>, ...; a trailing ? allows null
    description: str
    default: Any = _NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclasses.dataclass(frozen=True)
class NamedQuery:
    name: str
    question: str
    params: tuple[QueryParam, ...]
    text: str  # the whole file, header included (it is valid Cypher)
    path: Path

    def bind(self, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Parameters for a run: defaults filled in, unknown and missing ones refused."""
        values = dict(values or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise GraphError(f"query {self.name!r} has no parameter(s) {unknown}; "
                             f"it takes {sorted(known)}")
        out = {}
        for p in self.params:
            if p.name in values:
                out[p.name] = values[p.name]
            elif p.required:
                raise GraphError(f"query {self.name!r} needs ${p.name} ({p.type}: {p.description})")
            else:
                out[p.name] = p.default
        return out


def parse(text: str, name: str, path: Path) -> NamedQuery:
    """Parse a query file's header (see the module docstring)."""
    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        header.append(line[2:].strip())
    question_lines: list[str] = []
    params: list[QueryParam] = []
    in_params = False
    for h in header:
        m = _PARAM.match(h)
        if m:
            pname, ptype, default, desc = m.groups()
            try:
                dval = _NO_DEFAULT if default is None else json.loads(default)
            except json.JSONDecodeError as e:
                raise GraphError(f"{path}: default of ${pname} is not JSON: {default!r}") from e
            params.append(QueryParam(pname, ptype, desc.strip(), dval))
        elif _LOOSE_PARAM.match(h):
            names, desc = _LOOSE_PARAM.match(h).groups()  # type: ignore[union-attr]
            for pname in re.findall(r"\$(\w+)", names):
                params.append(QueryParam(pname, "any", desc.strip()))
        elif h.lower().rstrip(":") == "parameters":
            in_params = True
        elif h.startswith("$"):
            raise GraphError(f"{path}: parameter line not understood: {h!r}; "
                             "expected `$name: type [= default] - description`")
        elif params and h:  # a description continued on the next line
            last = params[-1]
            params[-1] = dataclasses.replace(last, description=f"{last.description} {h}")
        elif not params and not in_params:
            question_lines.append(h)
    question = " ".join(q for q in question_lines if q).strip()
    if not question:
        raise GraphError(f"{path}: a named query starts with a comment saying what it answers")
    used = set(re.findall(r"\$(\w+)", "\n".join(ln for ln in text.splitlines()
                                                 if not ln.startswith("//"))))
    declared = {p.name for p in params}
    if any(p.type == "any" for p in params) or not params:  # loose header: not checked
        params += [QueryParam(n, "any", "(not described in the header)")
                   for n in sorted(used - declared)]
    elif used != declared:
        raise GraphError(f"{path}: parameters used {sorted(used)} differ from those declared "
                         f"in the header {sorted(declared)}")
    return NamedQuery(name, question, tuple(params), text, path)


@cache
def _load_all(directory: str) -> dict[str, NamedQuery]:
    d = Path(directory)
    out = {}
    for path in sorted(d.glob("*.cypher")):
        out[path.stem] = parse(path.read_text(), path.stem, path)
    return out


def named_queries(directory: Path | None = None) -> dict[str, NamedQuery]:
    """Every named query by name (file stem)."""
    return _load_all(str(directory or resource_dir("queries")))


def get(name: str, directory: Path | None = None) -> NamedQuery:
    qs = named_queries(directory)
    if name not in qs:
        raise GraphError(f"no named query {name!r}; there are {sorted(qs)}")
    return qs[name]


def run(store: Any, name: str, params: dict[str, Any] | None = None,
        timeout_s: float | None = None) -> Any:
    """Run a named query read-only; returns the store's ``QueryResult``."""
    q = get(name)
    return store.read(q.text, q.bind(params), timeout_s=timeout_s)
