"""GraphQL object types of the connectome: neurons, connectivity, synapses, lineage,
provenance, regions and quality. Nested list fields load through the request's
DataLoaders (``info.context.loaders``), so a list of N neurons asking for their
partners costs one database round trip, not N.

Coordinates: points have named fields ``x, y, z`` (voxels of the dataset grid);
boxes are ``[z0, y0, x0, z1, y1, x1]`` voxels, end exclusive, as everywhere in
cxgraph. The (x, y, z) <-> (z, y, x) conversion is ``cxgraph.graph.coords``.
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any

import strawberry

from cxgraph.api.context import Context
from cxgraph.api.limits import First, check_first
from cxgraph.api.pagination import PageInfo, decode_cursor, page_of
from cxgraph.api.scalars import JSON, Id64, Long
from cxgraph.graph.coords import zyx_from_point

Info = strawberry.Info[Context, None]
AsOf = Annotated[int | None, strawberry.argument(
    description="graph version to answer for (default: the current graph)")]


# --- enums and inputs -----------------------------------------------------------
@strawberry.enum(description="Which side of a body's connections.")
class Direction(enum.Enum):
    UPSTREAM = "upstream"  # partners that synapse onto the body (its inputs)
    DOWNSTREAM = "downstream"  # partners the body synapses onto (its outputs)
    BOTH = "both"


@strawberry.enum(description="The kind of graph object an id names.")
class ObjectKind(enum.Enum):
    BODY = "body"
    SYNAPSE = "synapse"
    SUPERVOXEL = "supervoxel"


@strawberry.input(description="A box in voxels, end exclusive: z0 <= z < z1, and so on.")
class BoxInput:
    z0: float
    y0: float
    x0: float
    z1: float
    y1: float
    x1: float


@strawberry.input(description="Which bodies `neurons` lists; every given condition must hold.")
class NeuronFilter:
    body_ids: list[Id64] | None = strawberry.UNSET
    type: str | None = None
    instance: str | None = None
    status: str | None = None
    min_size: Long | None = strawberry.field(default=None, description="voxels")
    max_size: Long | None = strawberry.field(default=None, description="voxels")
    min_pre: int | None = None
    min_post: int | None = None
    region: str | None = strawberry.field(
        default=None, description="ROI name: the body has synapses in it (neuPrint roiInfo key "
                                  "or ROI boolean property)")


# --- value types ----------------------------------------------------------------
@strawberry.type(description="A point in voxels of the dataset grid.")
class Point:
    x: float
    y: float
    z: float

    @classmethod
    def from_value(cls, value: Any) -> Point | None:
        if value is None:
            return None
        z, y, x = zyx_from_point(value)
        return cls(x=x, y=y, z=z)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# --- neurons --------------------------------------------------------------------
@strawberry.type(description="A body (neuPrint :Segment / :Neuron) valid at the asked version.")
class Neuron:
    body_id: Id64
    type: str | None
    instance: str | None
    name: str | None
    status: str | None
    size: Long | None = strawberry.field(description="voxels")
    pre: int
    post: int
    upstream: int
    downstream: int
    roi_info: JSON | None = strawberry.field(
        description="per-ROI synapse counts {roi: {pre, post, upstream, downstream}}")
    valid_from: int | None = strawberry.field(description="first version the body exists in")
    valid_to: int | None = strawberry.field(description="first version without it; null = current")
    stage_run: str | None = strawberry.field(description="stage run that produced the body")
    block: int | None = strawberry.field(description="block that produced the body")
    as_of: strawberry.Private[int | None]

    @classmethod
    def from_record(cls, n: dict[str, Any], as_of: int | None) -> Neuron:
        return cls(
            body_id=n["bodyId"], type=n.get("type"), instance=n.get("instance"),
            name=n.get("name"), status=n.get("status"), size=n.get("size"),
            pre=n.get("pre") or 0, post=n.get("post") or 0,
            upstream=n.get("upstream") or 0, downstream=n.get("downstream") or 0,
            roi_info=_json(n.get("roiInfo")), valid_from=n.get("validFrom"),
            valid_to=n.get("validTo"), stage_run=n.get("stageRun"), block=n.get("block"),
            as_of=as_of,
        )

    @strawberry.field(description="Bodies connected to this one, strongest first.")
    async def partners(
        self, info: Info, direction: Direction = Direction.BOTH, min_weight: int = 1,
        first: First = None,
    ) -> list[Partner]:
        return await load_partners(info, self.body_id, direction, min_weight, first, self.as_of)

    @strawberry.field(description="This body's synapses (first page; continue with "
                                  "`synapses(bodyId:, after:)`).")
    async def synapses(self, info: Info, min_confidence: float = 0.0,
                       first: First = None) -> SynapsePage:
        return await load_body_synapses(info, self.body_id, min_confidence, first, self.as_of)


@strawberry.type
class NeuronPage:
    items: list[Neuron]
    page_info: PageInfo


@strawberry.type(description="One partner of a body and the connection's weight.")
class Partner:
    neuron: Neuron
    weight: int = strawberry.field(description="synapses of the connection (neuPrint weight)")
    direction: Direction


# --- connectivity ----------------------------------------------------------------
@strawberry.type(description="A (:Segment)-[:ConnectsTo]->(:Segment) edge.")
class Connection:
    pre: Id64
    post: Id64
    weight: int
    weight_hr: int | None = strawberry.field(description="all synapses, any confidence")
    as_of: strawberry.Private[int | None]

    @strawberry.field(description="The presynaptic body.")
    async def pre_neuron(self, info: Info) -> Neuron | None:
        return await load_neuron(info, self.pre, self.as_of)

    @strawberry.field(description="The postsynaptic body.")
    async def post_neuron(self, info: Info) -> Neuron | None:
        return await load_neuron(info, self.post, self.as_of)


@strawberry.type
class ConnectionPage:
    items: list[Connection]
    page_info: PageInfo


@strawberry.type(description="A shortest directed path of connections.")
class Path:
    body_ids: list[Id64]
    weights: list[int] = strawberry.field(description="weight of each hop, in order")
    as_of: strawberry.Private[int | None]

    @strawberry.field
    def length(self) -> int:
        return len(self.weights)

    @strawberry.field(description="The bodies on the path, in order.")
    async def neurons(self, info: Info) -> list[Neuron | None]:
        records = await info.context.loaders.neuron.load_many(
            [(b, self.as_of) for b in self.body_ids])
        return [Neuron.from_record(r, self.as_of) if r is not None else None for r in records]


# --- synapses ----------------------------------------------------------------------
@strawberry.type(description="One side (pre or post) of a detected synapse.")
class Synapse:
    synapse_id: Id64 = strawberry.field(description="shared by the pre and post side")
    type: str = strawberry.field(description="'pre' or 'post'")
    confidence: float | None
    location: Point | None
    body_id: Id64 | None = strawberry.field(description="body of this side at the asked version")
    partner_body_ids: list[Id64] = strawberry.field(
        description="bodies on the other side of the synapse")
    stage_run: str | None
    block: int | None
    valid_from: int | None
    valid_to: int | None

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Synapse:
        s = r["s"]
        return cls(
            synapse_id=s["synapseId"], type=s["type"], confidence=s.get("confidence"),
            location=Point.from_value(s.get("location")), body_id=r.get("bodyId"),
            partner_body_ids=sorted(b for b in (r.get("partners") or []) if b is not None),
            stage_run=s.get("stageRun"), block=s.get("block"),
            valid_from=s.get("validFrom"), valid_to=s.get("validTo"),
        )


@strawberry.type
class SynapsePage:
    items: list[Synapse]
    page_info: PageInfo


@strawberry.type(description="A synapse from a body to another: both sides (neuPrint "
                             "fetch_synapse_connections).")
class SynapseConnection:
    synapse_id: Id64
    pre_body_id: Id64
    post_body_id: Id64
    pre_location: Point | None
    post_location: Point | None
    pre_confidence: float | None
    post_confidence: float | None

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> SynapseConnection:
        s, t = r["s"], r["t"]
        return cls(synapse_id=r["synapseId"], pre_body_id=r["pre"], post_body_id=r["post"],
                   pre_location=Point.from_value(s.get("location")),
                   post_location=Point.from_value(t.get("location")),
                   pre_confidence=s.get("confidence"), post_confidence=t.get("confidence"))


@strawberry.type
class SynapseConnectionPage:
    items: list[SynapseConnection]
    page_info: PageInfo


# --- lineage ----------------------------------------------------------------------
@strawberry.type(description="A supervoxel (watershed fragment) and the block that made it.")
class Supervoxel:
    sv_id: Id64
    size: Long | None = strawberry.field(description="voxels")
    block: int | None
    stage_run: str | None
    centroid: Point | None
    valid_from: int | None
    valid_to: int | None

    @classmethod
    def from_record(cls, s: dict[str, Any]) -> Supervoxel:
        return cls(sv_id=s["svId"], size=s.get("size"), block=s.get("block"),
                   stage_run=s.get("stageRun"), centroid=Point.from_value(s.get("centroid")),
                   valid_from=s.get("validFrom"), valid_to=s.get("validTo"))


@strawberry.type
class SupervoxelPage:
    items: list[Supervoxel]
    page_info: PageInfo


@strawberry.type(description="One agglomeration merge between two supervoxels of the body.")
class Merge:
    a: Id64
    b: Id64
    affinity: float | None
    step: int | None
    block: int | None
    stage_run: str | None
    operation_id: str | None

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Merge:
        m = r["m"]
        return cls(a=r["a"], b=r["b"], affinity=m.get("affinity"), step=m.get("step"),
                   block=m.get("block"), stage_run=m.get("stageRun"),
                   operation_id=m.get("operationId"))


@strawberry.type
class MergePage:
    items: list[Merge]
    page_info: PageInfo


@strawberry.type(description="An operation (agglomerate, merge, split, rerun, import).")
class Operation:
    operation_id: str
    kind: str | None
    timestamp: str | None
    user: str | None
    params: JSON | None
    stage_run: str | None
    version: int | None
    created: list[Id64] = strawberry.field(description="bodies it created (first 100)")
    created_count: int
    retired: list[Id64] = strawberry.field(description="bodies it retired (first 100)")
    retired_count: int

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Operation:
        o = r["o"]
        return cls(
            operation_id=o["operationId"], kind=o.get("kind"),
            timestamp=None if o.get("timestamp") is None else str(o.get("timestamp")),
            user=o.get("user"), params=_json(o.get("params")), stage_run=o.get("stageRun"),
            version=o.get("version"), created=sorted(r.get("created") or []),
            created_count=r.get("createdCount") or 0,
            retired=sorted(r.get("retired") or []), retired_count=r.get("retiredCount") or 0,
        )


@strawberry.type(description="Where a body came from: its supervoxels, the merges that "
                             "joined them, the operations that made or ended it, and the "
                             "bodies it replaced or that replaced it.")
class Lineage:
    body_id: Id64
    valid_from: int | None
    valid_to: int | None
    operations: list[Operation]
    supersedes: list[Id64] = strawberry.field(description="older bodies this one replaced")
    superseded_by: list[Id64] = strawberry.field(description="newer bodies that replaced it")
    supervoxel_count: int
    as_of: strawberry.Private[int | None]

    @strawberry.field(description="The body's supervoxels, by svId.")
    async def supervoxels(self, info: Info, first: First = None,
                          after: str | None = None) -> SupervoxelPage:
        return await supervoxels_page(info, self.body_id, first, after)

    @strawberry.field(description="Agglomeration merges among its supervoxels, weakest "
                                  "(lowest affinity) first: the first suspects of a merge "
                                  "error.")
    async def merges(self, info: Info, first: First = None,
                     after: str | None = None) -> MergePage:
        return await merges_page(info, self.body_id, first, after)


@strawberry.type(description="One version of the graph: when it was made and what made it "
                             "(a load of stage runs, an import, an annotation, ...).")
class GraphVersion:
    version: int
    created_at: str | None = strawberry.field(
        description="UTC time the version was started (ISO 8601); `asOf` by time resolves to "
                    "the newest complete version created at or before the time")
    kind: str | None = strawberry.field(description="pipeline | import | annotate | ...")
    source: str | None = strawberry.field(description="what was loaded (tables, file, field)")
    note: str | None
    complete: bool = strawberry.field(description="false while its load is running")
    fingerprint: str | None = strawberry.field(description="hash of the loaded tables")
    stage_runs: list[str] = strawberry.field(description="stage runs it was loaded from")
    operations: list[Operation]

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> GraphVersion:
        v = r["ver"]
        return cls(version=v["version"], created_at=v.get("createdAt"), kind=v.get("kind"),
                   source=v.get("source"), note=v.get("note") or None,
                   complete=bool(v.get("complete")), fingerprint=v.get("fingerprint"),
                   stage_runs=list(r.get("stageRuns") or []),
                   operations=[Operation.from_record(o) for o in r.get("operations") or []])


# --- provenance ---------------------------------------------------------------------
@strawberry.type(description="A file or array a stage run read or wrote, by content hash.")
class Artifact:
    role: str
    name: str
    path: str
    sha256: str
    bytes: Long | None


@strawberry.type(description="One execution of one pipeline stage (table stage_runs of "
                             "provenance.duckdb), every recorded field.")
class StageRun:
    stage_run_id: str
    run_id: str | None
    stage: str
    layer: str
    status: str
    attempts: int | None
    params: JSON | None = strawberry.field(description="the full parameter dataclass")
    params_hash: str | None
    inputs: JSON | None = strawberry.field(description="{name: {path, sha256}}")
    input_hash: str | None
    outputs: JSON | None = strawberry.field(description="{name: {path, sha256}}")
    output_hash: str | None
    code_revision: str | None
    code_dirty: bool | None
    model_id: str | None = strawberry.field(description="sha256 of the model weights")
    environment: JSON | None = strawberry.field(description="host, OS, Python, libraries")
    device: str | None
    region: JSON | None = strawberry.field(description="[z0,y0,x0,z1,y1,x1] if restricted")
    started_at: str | None
    finished_at: str | None
    wall_s: float | None
    error: str | None
    artifacts: list[Artifact]
    model: JSON | None = strawberry.field(description="row of table models, if a model ran")


@strawberry.type(description="The ledger row of one block of a stage run (table block_runs).")
class BlockRun:
    block_id: Long
    status: str
    attempts: int | None
    write_roi: list[int] | None = strawberry.field(description="[z0,y0,x0,z1,y1,x1] voxels")
    read_roi: list[int] | None
    worker: str | None
    io_s: float | None
    compute_s: float | None
    bytes_read: Long | None
    bytes_written: Long | None
    peak_rss_mb: float | None
    started_at: str | None
    finished_at: str | None
    error: str | None


@strawberry.type(description="The stage runs behind one graph object.")
class Provenance:
    object_id: Id64
    kind: ObjectKind
    stage_run_id: str | None = strawberry.field(description="the run that produced the object")
    block: Long | None = strawberry.field(description="the block that produced it")
    valid_from: int | None
    valid_to: int | None
    stage_run: StageRun | None = strawberry.field(
        description="null when the provenance store has no such run")
    block_run: BlockRun | None
    upstream: list[StageRun] = strawberry.field(
        description="runs whose outputs this run read, transitively, nearest first "
                    "(layer by layer down to L1)")


# --- regions and quality -------------------------------------------------------------
@strawberry.type(description="A named region of the volume, with QA flags.")
class Region:
    name: str
    box: list[float] | None = strawberry.field(description="[z0,y0,x0,z1,y1,x1] voxels")
    flags: list[str]
    reason: str | None


@strawberry.type(description="One quality value (table quality).")
class QualityCell:
    layer: str
    stage: str
    stage_run_id: str
    block: Long | None
    section: int | None
    tile: str | None
    region: str | None
    value: float | None


@strawberry.type(description="A quality metric over the volume, with its summary.")
class QualityMap:
    layer: str
    metric: str
    count: int
    min: float | None
    max: float | None
    mean: float | None
    cells: list[QualityCell]
    page_info: PageInfo


# --- mutations' results -------------------------------------------------------------
@strawberry.type(description="Nothing with that id/name exists at the current version.")
class NotFound:
    message: str


AnnotateResult = Annotated[Neuron | NotFound, strawberry.union("AnnotateResult")]


# --- fetched through the request's loaders (resolvers use these too) ---------------------


async def load_neuron(info: Info, body_id: int, as_of: int | None) -> Neuron | None:
    """One body at ``as_of`` through the batching loader; None if it did not exist then."""
    record = await info.context.loaders.neuron.load((int(body_id), as_of))
    return Neuron.from_record(record, as_of) if record is not None else None


async def load_partners(info: Info, body_id: int, direction: Direction, min_weight: int,
                        first: int | None, as_of: int | None) -> list[Partner]:
    """Partners of one body through the request's batching loader."""
    first = check_first("partners", first, info.context.params)
    rows = await info.context.loaders.partners.load(
        (int(body_id), direction.value, int(min_weight), int(first), as_of))
    return [Partner(neuron=Neuron.from_record(p["partner"], as_of), weight=p["weight"],
                    direction=Direction(p["direction"])) for p in rows]


def synapse_key(r: dict) -> tuple:
    return (r["s"]["synapseId"], r["s"]["type"])


async def load_body_synapses(info: Info, body_id: int, min_confidence: float, first: int | None,
                             as_of: int | None) -> SynapsePage:
    """First page of one body's synapses through the request's batching loader."""
    first = check_first("synapses", first, info.context.params)
    rows = await info.context.loaders.synapses.load(
        (int(body_id), float(min_confidence), int(first), as_of))
    items, page_info = page_of(rows, first, "synapses", synapse_key)
    return SynapsePage(items=[Synapse.from_record(r) for r in items], page_info=page_info)


async def supervoxels_page(info: Info, body_id: int, first: int | None,
                           after: str | None) -> SupervoxelPage:
    first = check_first("supervoxels", first, info.context.params)
    (after_sv,) = decode_cursor("supervoxels", after, 1) or (None,)
    rows = await info.context.graph.read("api_supervoxels_of_body", {
        "bodyId": int(body_id), "after": after_sv, "first": first + 1}, "supervoxels")
    items, page_info = page_of(rows, first, "supervoxels", lambda r: (r["sv"]["svId"],))
    return SupervoxelPage(items=[Supervoxel.from_record(r["sv"]) for r in items],
                          page_info=page_info)


async def merges_page(info: Info, body_id: int, first: int | None, after: str | None) -> MergePage:
    first = check_first("merges", first, info.context.params)
    aff, a, b = decode_cursor("merges", after, 3) or (None, None, None)
    rows = await info.context.graph.read("api_merges_of_body", {
        "bodyId": int(body_id), "afterAffinity": aff, "afterA": a, "afterB": b,
        "first": first + 1}, "merges")
    items, page_info = page_of(rows, first, "merges", lambda r: (r["aff"], r["a"], r["b"]))
    return MergePage(items=[Merge.from_record(r) for r in items], page_info=page_info)


# --- traceback -----------------------------------------------------------------------
@strawberry.type(description="One layer of a traceback: its verdict and strongest evidence.")
class TracebackLayer:
    layer: str
    name: str
    verdict: str = strawberry.field(description="anomalous | normal (L1-L4), differs | same "
                                                "(L5), or no data")
    metric: str | None = strawberry.field(description="the strongest anomalous metric")
    relative: float | None = strawberry.field(description="(region - reference) / reference")
    p_adjusted: float | None = strawberry.field(description="Holm-adjusted permutation p")
    stage_runs: list[str]


@strawberry.type(description="Is a region's difference biology or a processing artifact? "
                             "(cxgraph traceback; the full report is `report`.)")
class Traceback:
    conclusion: str = strawberry.field(description="processing-artifact | processing-anomaly "
                                                   "| biology | no-difference")
    root_cause_layer: str | None
    summary: str
    layers: list[TracebackLayer]
    rerun_command: str | None
    report: JSON = strawberry.field(description="the report's JSON (as `cxgraph traceback`)")
