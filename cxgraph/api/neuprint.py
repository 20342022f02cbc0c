"""The neuPrint-compatible front door: the HTTP routes ``neuprint-python`` (and navis on top
of it) call, served by ``cxgraph serve`` next to GraphQL (over HTTPS on its own listener,
``cxgraph/api/tls.py``; see docs/neuprint.md).

Routes (all need ``Authorization: Bearer <token>``, read role)::

    GET  /api/dbmeta/datasets   {"<dataset>": {"last-mod", "uuid", "ROIs", "superLevelROIs"}}
    GET  /api/version           {"Version": "1.7.0"}   (< 1.7.3: the client stays on JSON)
    GET  /api/dbmeta/version    {"Version": "<Neo4j version>"}
    GET  /api/serverinfo        {"IsPublic": bool}
    GET  /api/available         the routes below /api
    GET  /profile, /api/profile {"Email", "AuthLevel"}
    POST /api/custom/custom     {"cypher", "dataset"} -> {"columns": [...], "data": [[...]]}
    GET  /api/skeletons/skeleton/<dataset>/<bodyId>?format=swc   SWC (cxgraph/api/shapes.py)
    GET  /api/roimeshes/mesh/<dataset>/<roi>   an ROI's mesh, OBJ in voxels x, y, z (a declared
         box, or zmesh of a declared label; ``volume``: the segmentation's extent)
    GET  /api/npexplorer/nglayers/<dataset>.json   neuroglancer layers: the segmentation as
         dvid://https://<this server>/<key>, where navis's fetch_mesh_neuron (through
         dvidtools) finds meshes
    GET  /api/node/<key>/segmentation_meshes/key/<bodyId>.ngmesh   a body's mesh, DVID's
         path (cxgraph/api/shapes.py); dvidtools sends no token, so ``key`` stands for it
         (the token's capability for meshes, ``TokenStore.capability``; no header needed)

navis fetches the layers and dvidtools the meshes through plain ``requests`` sessions that
know nothing of ``neuprint.Client(verify=...)``: with the generated certificate they need
``REQUESTS_CA_BUNDLE=WS/tls/cert.pem`` (docs/neuprint.md).

``/api/custom/custom`` is the analyst path (``GraphStore.analyst``: plan check, READ
transaction, ``[api] timeout_s``), after three rewrites of what the client sends for
Neo4j 4 + APOC (``rewrite``): ``exists(n.p)`` -> ``(n.p IS NOT NULL)``; ``[e:ConnectsTo]``
and ``[:Contains]`` match current relationships only (``validTo IS NULL``: the door shows
the current version), and so do their variable-length forms (``[:ConnectsTo*]`` of
``fetch_shortest_paths``/``fetch_paths``: a predicate on the clause's WHERE);
``apoc.map.removeKeys(x, [...])`` also removes cxgraph's internal keys;
``CALL apoc.cypher.runTimeboxed("<q>", {}, ms) YIELD value RETURN value.a AS b, ...``
(refused by the analyst policy: it runs unchecked Cypher) runs ``<q>`` itself through the
analyst path with that time limit and answers ``[]`` on a time-out, as APOC does. Errors
are ``{"error": message}`` (a time-out's message contains "timeout", which the client
raises as ``NeuprintTimeoutError``). Values are serialised as neuPrintHTTP does: nodes and
maps as property maps without cxgraph's internal properties (``INTERNAL``),
relationships as properties plus ``type``/``startNodeId``/``endNodeId``, points as
GeoJSON-like ``{"type": "Point", "coordinates": [x, y, z], "crs": ...}``, integers exact.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import neo4j.graph
import neo4j.spatial

from cxgraph.api.asgi import (
    Receive,
    Scope,
    Send,
    _loads,
    _read_body,
    _send,
    _send_json,
    cypher_error,
)
from cxgraph.api.errors import ApiError, BadInput
from cxgraph.errors import GraphError
from cxgraph.graph.meta import INTERNAL

if TYPE_CHECKING:
    from cxgraph.api.app import ApiApp
    from cxgraph.api.auth import Principal

SERVER_VERSION = "1.7.0"  # neuPrintHTTP version we answer to; < 1.7.3 keeps clients on JSON
ROUTES = ("/api/dbmeta/datasets", "/api/version", "/api/dbmeta/version", "/api/serverinfo",
          "/api/available", "/api/profile", "/api/custom/custom")
SHAPE_ROUTES = ("/api/skeletons/skeleton/{dataset}/{bodyId}", "/api/roimeshes/mesh/{dataset}/{roi}",
                "/api/npexplorer/nglayers/{dataset}.json",
                "/api/node/{key}/segmentation_meshes/key/{bodyId}.ngmesh")
_CRS = {"srid": 9157, "name": "cartesian-3d", "type": "link",
        "properties": {"href": "http://spatialreference.org/ref/sr-org/9157/ogcwkt/",
                       "type": "ogcwkt"}}

# --- rewriting the client's Cypher -------------------------------------------------------
# String literals are left alone; only the code between them is rewritten.
_LITERAL = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", re.S)
_NAME = r"(?:[A-Za-z_]\w*|`[^`]+`)"
_EXISTS_PROP = re.compile(rf"\bexists\s*\(\s*({_NAME}\s*\.\s*{_NAME})\s*\)", re.I)
# Relationship types with version intervals, in the simple pattern form the client writes
# (``[e:ConnectsTo]``, ``[:Contains]``): read as the current ones only.
_VERSIONED_REL = re.compile(r"\[\s*([A-Za-z_]\w*)?\s*:\s*(ConnectsTo|Contains)\s*\]")
# ... and their variable-length form (``[:ConnectsTo*]``, ``[:ConnectsTo*1..3]``, e.g. in
# ``allShortestPaths``), which Neo4j allows no inline WHERE in: named, and its MATCH's WHERE
# gets ``ALL(_x IN <name> WHERE _x.validTo IS NULL)`` (in the WHERE, so shortest-path
# searches only walk current relationships).
_VARLEN_REL = re.compile(r"\[\s*([A-Za-z_]\w*)?\s*:\s*(ConnectsTo|Contains)\s*\*([^\]]*)\]")
_CLAUSE = re.compile(r"\b(WHERE|MATCH|OPTIONAL|RETURN|WITH|UNWIND|CALL|ORDER|SKIP|LIMIT|UNION|"
                     r"CREATE|MERGE|SET|DELETE|DETACH|REMOVE|FOREACH|USE|FINISH)\b", re.I)
_REMOVE_KEYS = re.compile(r"\b(apoc\.map\.removeKeys\s*\(\s*[A-Za-z_]\w*\s*,\s*\[)", re.I)
_TIMEBOXED = re.compile(
    r"""^\s*CALL\s+apoc\.cypher\.runTimeboxed\s*\(\s*"((?:[^"\\]|\\.)*)"\s*,\s*\{\s*\}\s*,"""
    r"""\s*(\d+(?:\.\d+)?)\s*\)\s*YIELD\s+value\s+RETURN\s+(.+?)\s*;?\s*$""", re.S | re.I)
_SKELETON = re.compile(r"^/api/skeletons/skeleton/([^/]+)/(\d+)$")
_ROI_MESH = re.compile(r"^/api/roimeshes/mesh/([^/]+)/(.+)$")
_NGLAYERS = re.compile(r"^/api/npexplorer/nglayers/([^/]+)\.json$")
_DVID_MESH = re.compile(r"^/api/node/([^/]+)/segmentation_meshes/key/(\d+)\.ngmesh$")
MESHES = "meshes"  # the capability's purpose
_VALUE_ITEM = re.compile(r"^value\.(\w+)(?:\s+AS\s+(\w+))?$", re.I)


def _outside_literals(text: str, fn) -> str:
    parts = _LITERAL.split(text)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(parts))


def rewrite(cypher: str) -> str:
    """Neo4j-4 Cypher of neuprint-python as Neo4j 5 runs it (see the module docstring).

    >>> rewrite("MATCH (n) WHERE NOT exists(n.type) AND n.name = 'exists(n.x)' RETURN n")
    "MATCH (n) WHERE NOT (n.type IS NOT NULL) AND n.name = 'exists(n.x)' RETURN n"
    >>> rewrite("MATCH (n)-[e:ConnectsTo]->(m)-[:Contains]->(s)")
    'MATCH (n)-[e:ConnectsTo WHERE e.validTo IS NULL]->(m)-[_current0:Contains WHERE \
_current0.validTo IS NULL]->(s)'
    """
    internal = ", ".join(f"'{k}'" for k in sorted(INTERNAL))
    anonymous = iter(range(1 << 30))

    def current(m: re.Match) -> str:
        var = m.group(1) or f"_current{next(anonymous)}"
        return f"[{var}:{m.group(2)} WHERE {var}.validTo IS NULL]"

    def code(part: str) -> str:
        part = _EXISTS_PROP.sub(lambda m: f"({m.group(1)} IS NOT NULL)", part)
        part = _VERSIONED_REL.sub(current, part)
        return _REMOVE_KEYS.sub(lambda m: f"{m.group(1)}{internal}, ", part)

    return _current_varlength(_outside_literals(cypher, code))


def _current_varlength(cypher: str) -> str:
    """The variable-length half of ``rewrite`` (see ``_VARLEN_REL``)."""
    # positions are found in a copy with literals and `names` blanked (same length)
    masked = re.sub(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)""",
                    lambda m: m.group(0)[0] + " " * (len(m.group(0)) - 2) + m.group(0)[-1],
                    cypher, flags=re.S)
    depth, d = [], 0
    for ch in masked:
        d -= ch in ")]}"
        depth.append(d)
        d += ch in "([{"
    names, edits = iter(range(1 << 30)), []  # (position, text to insert)
    conds: dict[tuple[int, int | None], list[str]] = {}  # (clause end, WHERE end) -> preds
    for m in _VARLEN_REL.finditer(masked):
        var = m.group(1) or f"_path{next(names)}"
        if not m.group(1):
            edits.append((m.start() + 1, var))
        starts = [c.start() for c in re.finditer(r"\bMATCH\b", masked[:m.start()], re.I)]
        level = depth[starts[-1]] if starts else 0
        # the clause ends at its next clause keyword or where its subquery closes
        end = next((i for i in range(m.end(), len(masked)) if depth[i] < level), len(masked))
        where = None
        for c in _CLAUSE.finditer(masked, m.end(), end):
            if depth[c.start()] != level:
                continue
            if c.group(1).upper() != "WHERE" or where is not None:
                end = c.start()
                break
            where = c.end()
        conds.setdefault((end, where), []).append(f"ALL(_x IN {var} WHERE _x.validTo IS NULL)")
    for (end, where), cs in conds.items():
        if where is not None:
            edits += [(where, " ("), (end, f") AND {' AND '.join(cs)} ")]
        else:
            edits.append((end, f" WHERE {' AND '.join(cs)} "))
    for pos, text in sorted(edits, key=lambda e: e[0], reverse=True):
        cypher = cypher[:pos] + text + cypher[pos:]
    return cypher


def timeboxed(cypher: str) -> tuple[str, float, list[tuple[str, str]]] | None:
    """``(inner query, seconds, [(value key, column)])`` of the client's
    ``CALL apoc.cypher.runTimeboxed(...)`` form, or None for any other query."""
    m = _TIMEBOXED.match(cypher)
    if not m:
        return None
    inner = re.sub(r"\\(.)", r"\1", m.group(1))
    items = []
    for item in m.group(3).split(","):
        im = _VALUE_ITEM.match(item.strip())
        if not im:
            raise BadInput(f"apoc.cypher.runTimeboxed is answered only in the form "
                           f"neuprint-python sends (RETURN value.<key> AS <name>, ...); got "
                           f"RETURN {m.group(3)!r}")
        items.append((im.group(1), im.group(2) or f"value.{im.group(1)}"))
    return inner, float(m.group(2)) / 1000.0, items


# --- values --------------------------------------------------------------------------------
def _element_number(element_id: str) -> int | str:
    tail = element_id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else element_id


def value(v: Any) -> Any:
    """A driver value as neuPrintHTTP's JSON shows it (see the module docstring)."""
    if isinstance(v, neo4j.graph.Node):
        return {k: value(x) for k, x in v.items() if k not in INTERNAL}
    if isinstance(v, neo4j.graph.Relationship):
        out = {k: value(x) for k, x in v.items() if k not in INTERNAL}
        out.update(type=v.type,
                   startNodeId=_element_number(v.start_node.element_id) if v.start_node else None,
                   endNodeId=_element_number(v.end_node.element_id) if v.end_node else None)
        return out
    if isinstance(v, neo4j.graph.Path):
        out_path: list[Any] = []
        for i, node in enumerate(v.nodes):
            if i:
                out_path.append(value(v.relationships[i - 1]))
            out_path.append(value(node))
        return out_path
    if isinstance(v, neo4j.spatial.Point):
        crs = _CRS if len(v) == 3 else {**_CRS, "srid": 7203, "name": "cartesian"}
        return {"type": "Point", "coordinates": list(v), "crs": crs}
    if isinstance(v, list):
        return [value(x) for x in v]
    if isinstance(v, dict):
        return {k: value(x) for k, x in v.items()}
    if hasattr(v, "iso_format"):  # neo4j.time types
        return v.iso_format()
    return v


# --- routes --------------------------------------------------------------------------------
class NeuprintDoor:
    """The routes of the module docstring, on an ``ApiApp`` (its graph, tokens, quotas)."""

    DATASETS_TTL_S = 2.0  # the dataset list changes only with a load; saves a round trip

    def __init__(self, app: ApiApp):
        self.app = app
        self._datasets_cache: tuple[float, dict[str, Any]] | None = None

    @staticmethod
    def handles(path: str) -> bool:
        return path.startswith("/api/") or path == "/profile"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from cxgraph.api.auth import Role
        from cxgraph.api.errors import Unauthenticated

        method, path = scope["method"], scope["path"].rstrip("/")
        try:
            mesh = _DVID_MESH.match(path)
            if mesh and method == "GET":
                principal = self._mesh_principal(mesh.group(1))
                async with self.app.quotas.hold(principal, cypher=True):
                    await self._shape(send, "mesh", int(mesh.group(2)))
                return
            principal = self.app._authenticate(scope)
            if not principal.role.allows(Role.READ):
                raise Unauthenticated("this token may not read")
            if path == "/api/custom/custom" and method == "POST":
                async with self.app.quotas.hold(principal, cypher=True):
                    await self._custom(receive, send)
                return
            skeleton = _SKELETON.match(path)
            if skeleton and method == "GET":
                async with self.app.quotas.hold(principal, cypher=True):
                    await self._skeleton(scope, send, skeleton.group(1), int(skeleton.group(2)))
                return
            roi_mesh = _ROI_MESH.match(path)
            if roi_mesh and method == "GET":
                async with self.app.quotas.hold(principal, cypher=True):
                    await self._roi_mesh(send, roi_mesh.group(1), roi_mesh.group(2))
                return
            layers = _NGLAYERS.match(path)
            if layers and method == "GET":
                async with self.app.quotas.hold(principal):
                    await self._nglayers(scope, send, layers.group(1), principal)
                return
            if method != "GET" or (path not in ROUTES and path != "/profile"):
                await _send_json(send, 404 if method == "GET" else 405, {
                    "error": f"{method} {path} is not served by the neuPrint front door; "
                             f"it serves GET {', '.join(ROUTES[:-1])} and POST {ROUTES[-1]}"})
                return
            async with self.app.quotas.hold(principal):
                body = await self._get(path, principal)
            await _send_json(send, 200, body)
        except ApiError as e:
            extra = {"WWW-Authenticate": "Bearer"} if isinstance(e, Unauthenticated) else {}
            retry = getattr(e, "retry_after_s", None)
            if retry is not None:
                extra = {"Retry-After": str(max(1, round(retry + 0.5)))}
            await _send_json(send, e.http_status, {"error": str(e)}, extra)

    async def _get(self, path: str, principal: Principal) -> Any:
        if path == "/api/version":
            return {"Version": SERVER_VERSION}
        if path == "/api/serverinfo":
            return {"IsPublic": self.app.anonymous is not None}
        if path in ("/profile", "/api/profile"):
            level = {"read": "readonly", "write": "readwrite", "admin": "admin"}
            return {"Email": principal.name or principal.token_id, "ImageURL": "",
                    "AuthLevel": level[principal.role.value], "DataSet": ""}
        if path == "/api/available":
            return [*ROUTES, *SHAPE_ROUTES]
        if path == "/api/dbmeta/version":
            rows = await self.app.graph.read_text(
                "CALL dbms.components() YIELD name, versions RETURN name, versions[0] AS v",
                {}, "dbmeta/version")
            return {"Version": " ".join(f"{r['name']} {r['v']}" for r in rows)}
        return await self._datasets()

    async def _datasets(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._datasets_cache and now - self._datasets_cache[0] < self.DATASETS_TTL_S:
            return self._datasets_cache[1]
        rows = await self.app.graph.read_text(
            "MATCH (m:Meta) RETURN m.dataset AS dataset, m.lastDatabaseEdit AS lastMod, "
            "m.uuid AS uuid, m.roiInfo AS roiInfo, m.superLevelRois AS superLevel, "
            "m.primaryRois AS primary", {}, "dbmeta/datasets")
        out = {}
        for r in rows:
            try:
                rois = sorted(json.loads(r["roiInfo"] or "{}"))
            except ValueError:
                rois = []
            out[r["dataset"]] = {"last-mod": r["lastMod"], "uuid": r["uuid"], "ROIs": rois,
                                 "superLevelROIs": list(r["superLevel"] or []),
                                 "primaryROIs": list(r["primary"] or []), "hidden": False,
                                 "info": "", "logo": ""}
        self._datasets_cache = (now, out)
        return out

    def _mesh_principal(self, key: str) -> Principal:
        from cxgraph.api.auth import Principal, Role
        from cxgraph.api.errors import Unauthenticated

        if key == "anonymous" and self.app.anonymous is not None:
            return Principal(token_id="", name="anonymous", role=self.app.anonymous)
        principal = self.app.tokens.authenticate_capability(key, MESHES)
        if principal is None or not principal.role.allows(Role.READ):
            raise Unauthenticated("the mesh key is unknown or its token revoked; fetch "
                                  "/api/npexplorer/nglayers/<dataset>.json again")
        return principal

    async def _nglayers(self, scope: Scope, send: Send, dataset: str,
                        principal: Principal) -> None:
        if dataset not in await self._datasets():
            await _send_json(send, 404, {"error": f"dataset {dataset!r} is not on this server"})
            return
        key = (self.app.tokens.capability(principal, MESHES) if principal.token_id
               else "anonymous")
        hosts = [v.decode() for k, v in scope.get("headers", []) if k == b"host"]
        host = (urlsplit("//" + hosts[0]).hostname if hosts else None) or scope["server"][0]
        host = f"[{host}]" if ":" in host else host
        base = f"{scope.get('scheme', 'https')}://{host}:{scope['server'][1]}"  # as called
        await _send_json(send, 200, {"layers": [
            {"type": "segmentation", "name": dataset, "source": f"dvid://{base}/{key}"}]})

    async def _roi_mesh(self, send: Send, dataset: str, roi: str) -> None:
        import asyncio

        from cxgraph.graph.rois import roi_mesh_obj
        from cxgraph.workspace import Workspace

        obj = None
        if dataset in await self._datasets():
            obj = await asyncio.get_running_loop().run_in_executor(
                None, roi_mesh_obj, Workspace.open(self.app.root), roi)
        if obj is None:
            await _send_json(send, 404, {"error": f"no ROI {roi!r} in dataset {dataset!r} "
                                                  "(`cxgraph roi list` shows the declared ones)"})
            return
        await _send(send, 200, obj.encode(), "text/plain; charset=utf-8")

    async def _skeleton(self, scope: Scope, send: Send, dataset: str, body_id: int) -> None:
        from urllib.parse import parse_qs

        fmt = parse_qs(scope.get("query_string", b"").decode()).get("format", ["swc"])[0]
        if fmt != "swc":
            raise BadInput(f"skeleton format {fmt!r}: only format=swc is served")
        if dataset not in await self._datasets():
            await _send_json(send, 404, {"error": f"dataset {dataset!r} is not on this server"})
            return
        await self._shape(send, "skeleton", body_id)

    async def _shape(self, send: Send, kind: str, body_id: int) -> None:
        import asyncio

        from cxgraph.api.shapes import NoShape, mesh_ngmesh, skeleton_swc

        make = skeleton_swc if kind == "skeleton" else mesh_ngmesh
        try:
            data = await asyncio.get_running_loop().run_in_executor(
                None, make, self.app.root, body_id)
        except NoShape as e:
            await _send_json(send, 404, {"error": str(e)})
            return
        if kind == "skeleton":
            await _send(send, 200, data.encode(), "text/plain; charset=utf-8")
        else:
            await _send(send, 200, data, "application/octet-stream")

    async def _custom(self, receive: Receive, send: Send) -> None:

        request = _loads(await _read_body(receive), "request body")
        if not isinstance(request, dict) or not isinstance(request.get("cypher"), str):
            raise BadInput('expected a JSON object {"cypher": "MATCH ...", "dataset": "..."}')
        dataset = request.get("dataset") or ""
        if dataset:
            known = await self._datasets()
            if dataset not in known:
                raise BadInput(f"dataset {dataset!r} is not on this server; it has "
                               f"{sorted(known)}")
        limit = self.app.params.timeout_s
        boxed = timeboxed(request["cypher"])
        query, timeout = ((rewrite(boxed[0]), min(boxed[1], limit)) if boxed
                          else (rewrite(request["cypher"]), limit))
        try:
            result = await self.app.graph.analyst(query, {}, timeout, convert=value)
        except GraphError as e:
            code, status, text = cypher_error(e, timeout)
            if boxed and code == "TIME_LIMIT":  # APOC's runTimeboxed answers nothing
                await _send_json(send, 200, {"columns": [c for _, c in boxed[2]], "data": []})
                return
            await _send_json(send, status, {"error": text})
            return
        if result.truncated:
            cap = self.app.params.cypher_max_rows
            await _send_json(send, 413, {"error": f"the result has more than {cap} rows (the "
                                                  f"[api] cypher_max_rows limit); ask for "
                                                  f"fewer bodies or add LIMIT"})
            return
        columns, rows = result.columns, result.rows
        if boxed:
            records = [dict(zip(columns, r, strict=True)) for r in rows]
            columns = [c for _, c in boxed[2]]
            rows = [[rec.get(k) for k, _ in boxed[2]] for rec in records]
        await self.app._send_capped(send, {"columns": columns, "data": rows})
