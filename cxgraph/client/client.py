"""``Client``: the GraphQL API as pandas DataFrames (columns in docs/client.md).

Every method is one GraphQL query (the strings below), paged and batched here; there is
no second path to the graph. ``as_of`` is a version number, or a time (``datetime``,
``pandas.Timestamp`` or ISO 8601 text; no offset = UTC) that the server resolves to the
newest version created at or before it (``versionAt``), as CAVEclient's ``timestamp``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from cxgraph.client.transport import ClientError, HttpTransport, WorkspaceTransport, execute

AsOf = int | str | dt.datetime | dt.date | pd.Timestamp | None

NEURON_FIELDS = ("bodyId type instance name status size pre post upstream downstream roiInfo "
                 "validFrom validTo stageRun block")
NEURONS = """query($f: NeuronFilter, $first: Int, $after: String, $asOf: Int) {
  neurons(filter: $f, first: $first, after: $after, asOf: $asOf) {
    items { ...N } pageInfo { hasNextPage endCursor } } }
fragment N on Neuron { """ + NEURON_FIELDS + " }"
CONNECTIONS = """query($pre: [Id64!]!, $post: [Id64!], $w: Int!, $first: Int, $after: String,
    $asOf: Int) {
  connections(pre: $pre, post: $post, minWeight: $w, first: $first, after: $after,
              asOf: $asOf) {
    items { pre post weight weightHr } pageInfo { hasNextPage endCursor } } }"""
SYNAPSES = """query($b: Id64!, $c: Float!, $first: Int, $after: String, $asOf: Int) {
  synapses(bodyId: $b, minConfidence: $c, first: $first, after: $after, asOf: $asOf) {
    items { synapseId type confidence location { x y z } bodyId partnerBodyIds stageRun
            block validFrom validTo }
    pageInfo { hasNextPage endCursor } } }"""
SYNAPSE_CONNECTIONS = """query($pre: [Id64!]!, $post: [Id64!], $c: Float!, $first: Int,
    $after: String, $asOf: Int) {
  synapseConnections(pre: $pre, post: $post, minConfidence: $c, first: $first,
                     after: $after, asOf: $asOf) {
    items { synapseId preBodyId postBodyId preLocation { x y z } postLocation { x y z }
            preConfidence postConfidence }
    pageInfo { hasNextPage endCursor } } }"""
OPERATION_FIELDS = ("operationId kind version timestamp user stageRun params created "
                    "createdCount retired retiredCount")
LINEAGE = """query($b: Id64!, $asOf: Int) { lineage(bodyId: $b, asOf: $asOf) {
  bodyId validFrom validTo supersedes supersededBy supervoxelCount
  operations { ...O } } }
fragment O on Operation { """ + OPERATION_FIELDS + " }"
RUN_FIELDS = ("stageRunId runId stage layer status codeRevision codeDirty modelId paramsHash "
              "inputHash outputHash device startedAt finishedAt wallS")
PROVENANCE = """query($id: Id64!, $kind: ObjectKind, $asOf: Int) {
  provenance(objectId: $id, kind: $kind, asOf: $asOf) {
    objectId kind stageRunId block validFrom validTo
    stageRun { ...R } upstream { ...R } } }
fragment R on StageRun { """ + RUN_FIELDS + " }"
QUALITY = """query($layer: String!, $metric: String!, $stage: String, $region: String,
    $first: Int, $after: String, $asOf: Int) {
  qualityMap(layer: $layer, metric: $metric, stage: $stage, region: $region, first: $first,
             after: $after, asOf: $asOf) {
    count min max mean
    cells { layer stage stageRunId block section tile region value }
    pageInfo { hasNextPage endCursor } } }"""
VERSIONS = """{ versions { version createdAt kind source note complete fingerprint stageRuns
  operations { ...O } } }
fragment O on Operation { """ + OPERATION_FIELDS + " }"
VERSION_AT = "query($t: String!) { versionAt(timestamp: $t) }"

NEURON_COLUMNS = NEURON_FIELDS.split()
ADJACENCY_COLUMNS = ["bodyId_pre", "bodyId_post", "weight", "weightHR"]
SYNAPSE_COLUMNS = ["bodyId", "synapseId", "type", "x", "y", "z", "confidence",
                   "partnerBodyIds", "stageRun", "block", "validFrom", "validTo"]
SYNAPSE_CONNECTION_COLUMNS = ["bodyId_pre", "bodyId_post", "synapseId", "x_pre", "y_pre",
                              "z_pre", "x_post", "y_post", "z_post", "confidence_pre",
                              "confidence_post"]
OPERATION_COLUMNS = OPERATION_FIELDS.split()
PROVENANCE_COLUMNS = ["objectId", "kind", "relation", "block", "validFrom", "validTo",
                      *RUN_FIELDS.split()]
QUALITY_COLUMNS = ["layer", "stage", "stageRunId", "block", "section", "tile", "region",
                   "value"]
VERSION_COLUMNS = ["version", "createdAt", "kind", "source", "note", "complete",
                   "fingerprint", "stageRuns", "operations"]


class Client:
    """The cxgraph API from Python, answers as pandas DataFrames.

    ``target`` is the server (``http://127.0.0.1:8700``, ``127.0.0.1:8700`` or the full
    ``.../graphql`` URL), or a workspace directory: then the workspace's API runs in this
    process on the workspace's Neo4j, which must already be running (nothing is started).
    ``token`` is a bearer token (``cxgraph token create``); default ``$CXGRAPH_TOKEN``.

    >>> c = Client("http://127.0.0.1:8700", token="...")          # doctest: +SKIP
    >>> c.fetch_neurons(type="KC", as_of=1)                        # doctest: +SKIP
    """

    def __init__(self, target: str | os.PathLike, token: str | None = None, *,
                 timeout_s: float = 120.0, page_size: int = 1000, id_batch: int = 1000):
        token = token if token is not None else os.environ.get("CXGRAPH_TOKEN")
        text = os.fspath(target)
        if "://" not in text and Path(text).is_dir():
            self._transport: HttpTransport | WorkspaceTransport = WorkspaceTransport(
                Path(text), token)
        else:
            self._transport = HttpTransport(text, token, timeout_s)
        self.page_size, self.id_batch = int(page_size), int(id_batch)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of any GraphQL query (errors raise ``ClientError``)."""
        return execute(self._transport, query, variables)

    def _pages(self, query: str, field: str, variables: dict[str, Any]) -> Iterator[dict]:
        after = None
        while True:
            page = self.graphql(query, {**variables, "first": self.page_size,
                                        "after": after})[field]
            yield page
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def _items(self, query: str, field: str, variables: dict[str, Any]) -> Iterator[dict]:
        for page in self._pages(query, field, variables):
            yield from page["items"]

    def _batches(self, ids: Iterable[int]) -> Iterator[list[str]]:
        ids = [str(int(i)) for i in ids]
        for i in range(0, len(ids), self.id_batch):
            yield ids[i:i + self.id_batch]

    def resolve_version(self, as_of: AsOf) -> int | None:
        """``as_of`` as a version number (None: the current graph)."""
        if as_of is None:
            return None
        if isinstance(as_of, (dt.datetime, dt.date, pd.Timestamp)):
            as_of = pd.Timestamp(as_of).isoformat()
        if isinstance(as_of, str):
            v = self.graphql(VERSION_AT, {"t": as_of})["versionAt"]
            if v is None:
                raise ClientError(f"as_of={as_of!r}: no graph version was complete at or "
                                  f"before that time (see Client.versions())")
            return int(v)
        if isinstance(as_of, bool) or not isinstance(as_of, int) and not hasattr(
                as_of, "__index__"):
            raise TypeError(f"as_of: expected a version number or a timestamp, got "
                            f"{as_of!r}")
        return int(as_of)

    # --- neurons and connectivity ------------------------------------------------------
    def fetch_neurons(self, criteria: Any = None, *, type: str | None = None,  # noqa: A002
                      instance: str | None = None, status: str | None = None,
                      min_pre: int | None = None, min_post: int | None = None,
                      region: str | None = None, as_of: AsOf = None) -> pd.DataFrame:
        """Bodies matching every given condition, one row each, by bodyId.

        ``criteria``: None (all), a body id or ids, a type name (str), or a dict with
        the keyword names (``bodyId`` too)."""
        crit = _criteria(criteria)
        flt = {"type": crit.pop("type", type), "instance": crit.pop("instance", instance),
               "status": crit.pop("status", status), "minPre": crit.pop("min_pre", min_pre),
               "minPost": crit.pop("min_post", min_post),
               "region": crit.pop("region", region)}
        body_ids = crit.pop("bodyId", None)
        if crit:
            raise ValueError(f"fetch_neurons: unknown criteria {sorted(crit)}; expected "
                             "bodyId, type, instance, status, min_pre, min_post, region")
        flt = {k: v for k, v in flt.items() if v is not None}
        v = self.resolve_version(as_of)
        batches = [None] if body_ids is None else list(self._batches(body_ids))
        rows = [n for b in batches for n in self._items(
            NEURONS, "neurons", {"f": {**flt, **({} if b is None else {"bodyIds": b})},
                                 "asOf": v})]
        df = _frame(rows, NEURON_COLUMNS, ids=["bodyId"])
        return df.sort_values("bodyId", ignore_index=True) if len(batches) > 1 else df

    def fetch_adjacencies(self, sources: Iterable[int], targets: Iterable[int] | None = None,
                          min_weight: int = 1, *, as_of: AsOf = None) -> pd.DataFrame:
        """Connections from ``sources`` to ``targets`` (None: to any body) with weight >=
        ``min_weight``: columns bodyId_pre, bodyId_post, weight, weightHR."""
        v = self.resolve_version(as_of)
        post_batches = [None] if targets is None else list(self._batches(targets))
        rows = []
        for pre in self._batches(sources):
            for post in post_batches:
                rows += [{"bodyId_pre": c["pre"], "bodyId_post": c["post"],
                          "weight": c["weight"], "weightHR": c["weightHr"]}
                         for c in self._items(CONNECTIONS, "connections", {
                             "pre": pre, "post": post, "w": int(min_weight), "asOf": v})]
        df = _frame(rows, ADJACENCY_COLUMNS, ids=["bodyId_pre", "bodyId_post"])
        return df.sort_values(["bodyId_pre", "bodyId_post"], ignore_index=True)

    def fetch_synapses(self, bodies: int | Iterable[int], min_confidence: float = 0.0, *,
                       as_of: AsOf = None) -> pd.DataFrame:
        """Every synapse side (pre and post) of the bodies, by (bodyId, synapseId, type);
        x, y, z in voxels."""
        v = self.resolve_version(as_of)
        rows = []
        for body in [bodies] if isinstance(bodies, int) else bodies:
            for s in self._items(SYNAPSES, "synapses", {"b": str(int(body)),
                                                        "c": float(min_confidence),
                                                        "asOf": v}):
                loc = s.pop("location") or {}
                rows.append({**s, "bodyId": s["bodyId"] or str(int(body)),
                             "x": loc.get("x"), "y": loc.get("y"), "z": loc.get("z"),
                             "partnerBodyIds": [int(b) for b in s["partnerBodyIds"]]})
        return _frame(rows, SYNAPSE_COLUMNS, ids=["bodyId", "synapseId"])

    def fetch_synapse_connections(self, pre: int | Iterable[int],
                                  post: int | Iterable[int] | None = None,
                                  min_confidence: float = 0.0, *,
                                  as_of: AsOf = None) -> pd.DataFrame:
        """Synapses from ``pre`` bodies to ``post`` bodies (None: any), one row per
        synapse with both sides' locations (voxels) and confidences."""
        v = self.resolve_version(as_of)
        pre = [pre] if isinstance(pre, int) else pre
        posts = [None] if post is None else list(
            self._batches([post] if isinstance(post, int) else post))
        rows = []
        for pre_ids in self._batches(pre):
            for post_ids in posts:
                for s in self._items(SYNAPSE_CONNECTIONS, "synapseConnections", {
                        "pre": pre_ids, "post": post_ids, "c": float(min_confidence),
                        "asOf": v}):
                    a, b = s["preLocation"] or {}, s["postLocation"] or {}
                    rows.append({
                        "bodyId_pre": s["preBodyId"], "bodyId_post": s["postBodyId"],
                        "synapseId": s["synapseId"], "x_pre": a.get("x"), "y_pre": a.get("y"),
                        "z_pre": a.get("z"), "x_post": b.get("x"), "y_post": b.get("y"),
                        "z_post": b.get("z"), "confidence_pre": s["preConfidence"],
                        "confidence_post": s["postConfidence"]})
        df = _frame(rows, SYNAPSE_CONNECTION_COLUMNS,
                    ids=["bodyId_pre", "bodyId_post", "synapseId"])
        return df.sort_values("synapseId", ignore_index=True)

    # --- lineage, provenance, quality, versions -----------------------------------------
    def lineage(self, body: int, *, as_of: AsOf = None) -> pd.DataFrame:
        """The operations that created, retired or annotated ``body``, one row each by
        version; ``df.attrs`` holds bodyId, validFrom, validTo, supersedes, supersededBy
        and supervoxelCount. An unknown body raises ``LookupError``."""
        out = self.graphql(LINEAGE, {"b": str(int(body)),
                                     "asOf": self.resolve_version(as_of)})["lineage"]
        if out is None:
            raise LookupError(f"lineage: no body {int(body)} in the graph")
        df = _frame(out.pop("operations"), OPERATION_COLUMNS, ids=[])
        for col in ("created", "retired"):
            df[col] = [[int(b) for b in ids] for ids in df[col]]
        df.attrs.update({"bodyId": int(out["bodyId"]), "validFrom": out["validFrom"],
                         "validTo": out["validTo"],
                         "supersedes": [int(b) for b in out["supersedes"]],
                         "supersededBy": [int(b) for b in out["supersededBy"]],
                         "supervoxelCount": out["supervoxelCount"]})
        return df

    def provenance(self, object_id: int, kind: str | None = None, *,
                   as_of: AsOf = None) -> pd.DataFrame:
        """The stage runs behind an object (body, synapse or supervoxel id; ``kind`` picks
        one of them): a row ``relation='produced'`` per object kind with that id, then
        its ``'upstream'`` runs, nearest first."""
        out = self.graphql(PROVENANCE, {
            "id": str(int(object_id)), "kind": None if kind is None else kind.upper(),
            "asOf": self.resolve_version(as_of)})["provenance"]
        rows = []
        for p in out:
            common = {"objectId": p["objectId"], "kind": p["kind"].lower()}
            rows.append({**common, "relation": "produced", "block": p["block"],
                         "validFrom": p["validFrom"], "validTo": p["validTo"],
                         **(p["stageRun"] or {"stageRunId": p["stageRunId"]})})
            rows += [{**common, "relation": "upstream", **u} for u in p["upstream"]]
        return _frame(rows, PROVENANCE_COLUMNS, ids=["objectId"])

    def quality(self, layer: str, metric: str, *, stage: str | None = None,
                region: str | None = None, as_of: AsOf = None) -> pd.DataFrame:
        """The values of one quality metric of one layer (of one named region's rows if
        ``region``), one row per cell; ``df.attrs`` holds count, min, max, mean."""
        v = self.resolve_version(as_of)
        rows, summary = [], {}
        for page in self._pages(QUALITY, "qualityMap", {
                "layer": layer, "metric": metric, "stage": stage, "region": region,
                "asOf": v}):
            rows += page["cells"]
            summary = {k: page[k] for k in ("count", "min", "max", "mean")}
        df = _frame(rows, QUALITY_COLUMNS, ids=[])
        df.attrs.update(summary)
        return df

    def versions(self) -> pd.DataFrame:
        """Every graph version, oldest first: when it was created (UTC), its kind and
        source, the stage runs it was loaded from and its operations (a list of dicts
        with the columns of ``lineage``)."""
        rows = self.graphql(VERSIONS)["versions"]
        df = _frame(rows, VERSION_COLUMNS, ids=[])
        df["createdAt"] = pd.to_datetime(df["createdAt"], utc=True, format="ISO8601")
        return df


def _criteria(criteria: Any) -> dict[str, Any]:
    if criteria is None:
        return {}
    if isinstance(criteria, dict):
        crit = dict(criteria)
        for alias in ("bodyIds", "body_id", "body_ids"):
            if alias in crit:
                crit["bodyId"] = crit.pop(alias)
        if isinstance(crit.get("bodyId"), int):
            crit["bodyId"] = [crit["bodyId"]]
        return crit
    if isinstance(criteria, str):
        return {"type": criteria}
    if isinstance(criteria, int):
        return {"bodyId": [criteria]}
    return {"bodyId": list(criteria)}


def _frame(rows: list[dict[str, Any]], columns: list[str], ids: list[str]) -> pd.DataFrame:
    """Rows as a frame with exactly ``columns``; id columns (JSON strings: 64-bit ids do
    not survive a float) as int64, like Neo4j's integers and neuprint-python's."""
    df = pd.DataFrame(rows, columns=columns)
    for col in ids:
        df[col] = df[col].map(int).astype("int64")
    return df
