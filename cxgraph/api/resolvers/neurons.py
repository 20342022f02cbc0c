"""neuron(bodyId) and neurons(filter, first, after)."""

from __future__ import annotations

from cxgraph.api.limits import First, check_first, check_ids
from cxgraph.api.pagination import decode_cursor, page_of
from cxgraph.api.scalars import Id64
from cxgraph.api.types import AsOf, Info, Neuron, NeuronFilter, NeuronPage, load_neuron


async def neuron(info: Info, body_id: Id64, as_of: AsOf = None) -> Neuron | None:
    """One body as it was at `asOf` (default: now); null if it did not exist then."""
    return await load_neuron(info, body_id, as_of)


async def neurons(
    info: Info,
    filter: NeuronFilter | None = None,  # noqa: A002 - the GraphQL argument's name
    first: First = None,
    after: str | None = None,
    as_of: AsOf = None,
) -> NeuronPage:
    """Bodies matching `filter`, by bodyId, one page at a time."""
    ctx = info.context
    first = check_first("neurons", first, ctx.params)
    f = filter or NeuronFilter()
    body_ids = None if not f.body_ids else check_ids(
        "neurons", "filter.bodyIds", [int(b) for b in f.body_ids], ctx.params)
    (after_id,) = decode_cursor("neurons", after, 1) or (None,)
    rows = await ctx.graph.read("api_neurons_page", {
        "asOf": as_of, "after": after_id, "first": first + 1,
        "bodyIds": body_ids, "type": f.type, "instance": f.instance, "status": f.status,
        "minSize": f.min_size,
        "maxSize": f.max_size, "minPre": f.min_pre, "minPost": f.min_post, "region": f.region,
    }, "neurons")
    items, page_info = page_of(rows, first, "neurons", lambda r: (r["n"]["bodyId"],))
    return NeuronPage(items=[Neuron.from_record(r["n"], as_of) for r in items],
                      page_info=page_info)
