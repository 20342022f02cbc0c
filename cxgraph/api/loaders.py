"""Per-request DataLoaders: one ``UNWIND $ids`` query per batch, results in key order,
``None`` for misses.

A key carries the arguments that shape the answer (version, direction, ...);
keys of one batch that share those arguments go out as one query, so a list of
N neurons asking for their partners costs one round trip.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from strawberry.dataloader import DataLoader

from cxgraph.api.db import ApiGraph

# (bodyId, asOf)
NeuronKey = tuple[int, int | None]
# (bodyId, direction, minWeight, first, asOf)
PartnersKey = tuple[int, str, int, int, int | None]
# (bodyId, minConfidence, first, asOf)
SynapsesKey = tuple[int, float, int, int | None]


async def _grouped(
    keys: list[tuple],
    fetch: Callable[[tuple, list[int]], Awaitable[dict[int, Any]]],
    missing: Any = None,
) -> list[Any]:
    """Group keys by everything but their first element (the id), fetch once per group."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for k in keys:
        groups[k[1:]].append(k[0])
    found: dict[tuple, Any] = {}
    for rest, ids in groups.items():
        by_id = await fetch(rest, list(dict.fromkeys(ids)))
        for i in ids:
            found[(i, *rest)] = by_id.get(i, missing)
    return [found[k] for k in keys]


@dataclass
class Loaders:
    neuron: DataLoader[NeuronKey, Any]
    partners: DataLoader[PartnersKey, list[dict]]
    synapses: DataLoader[SynapsesKey, list[dict]]


def make_loaders(graph: ApiGraph) -> Loaders:
    """Fresh loaders for one request (their caches must not outlive it). They return
    records; the types turn them into schema objects (so loaders never import types)."""

    async def neurons(keys: list[NeuronKey]) -> list[Any]:
        async def fetch(rest: tuple, ids: list[int]) -> dict[int, Any]:
            (as_of,) = rest
            rows = await graph.read("api_neurons_by_id",
                                    {"ids": ids, "asOf": as_of}, "neuron")
            return {r["id"]: r["n"] for r in rows}
        return await _grouped(keys, fetch)

    async def partners(keys: list[PartnersKey]) -> list[list[dict]]:
        async def fetch(rest: tuple, ids: list[int]) -> dict[int, Any]:
            direction, min_weight, first, as_of = rest
            rows = await graph.read("api_partners", {
                "ids": ids, "direction": direction, "minWeight": min_weight, "first": first,
                "asOf": as_of}, "partners")
            return {r["id"]: r["partners"] for r in rows}
        return await _grouped(keys, fetch, missing=[])

    async def synapses(keys: list[SynapsesKey]) -> list[list[dict]]:
        async def fetch(rest: tuple, ids: list[int]) -> dict[int, Any]:
            min_conf, first, as_of = rest
            rows = await graph.read("api_synapses_of_bodies", {
                "ids": ids, "minConfidence": min_conf, "first": first + 1,
                "afterId": None, "afterType": None, "asOf": as_of},
                "synapses")
            out: dict[int, list] = defaultdict(list)
            for r in rows:
                out[r["id"]].append(r)
            return out
        return await _grouped(keys, fetch, missing=[])

    return Loaders(neuron=DataLoader(neurons), partners=DataLoader(partners),
                   synapses=DataLoader(synapses))
