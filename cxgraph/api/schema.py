"""The GraphQL schema: assembles the domain resolvers and the limit extensions."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig

from cxgraph.api.limits import CostLimiter, LimitRules, default_first, validation_rules
from cxgraph.api.params import ApiParams
from cxgraph.api.resolvers import (
    connectivity,
    lineage,
    mutations,
    neurons,
    provenance,
    quality,
    regions,
    synapses,
    traceback,
    versions,
)
from cxgraph.api.scalars import SCALAR_MAP
from cxgraph.api.types import (
    AnnotateResult,
    ConnectionPage,
    GraphVersion,
    Lineage,
    Neuron,
    NeuronPage,
    Partner,
    Path,
    Provenance,
    QualityMap,
    Region,
    SynapseConnectionPage,
    SynapsePage,
    Traceback,
)


def _field(resolver):
    """A root field described by its resolver's docstring (shown in GraphiQL and the SDL)."""
    doc = " ".join((resolver.__doc__ or "").split())
    return strawberry.field(resolver=resolver, description=doc or None)


@strawberry.type(description="Reads. Every field takes an optional `asOf` version "
                             "(default: the current graph).")
class Query:
    neuron: Neuron | None = _field(neurons.neuron)
    neurons: NeuronPage = _field(neurons.neurons)
    partners: list[Partner] = _field(connectivity.partners)
    connections: ConnectionPage = _field(connectivity.connections)
    shortest_path: Path | None = _field(connectivity.shortest_path)
    # (fields named like their resolver module come after its other fields: they shadow it)
    synapse_connections: SynapseConnectionPage = _field(synapses.synapse_connections)
    synapses: SynapsePage = _field(synapses.synapses)
    lineage: Lineage | None = _field(lineage.lineage)
    provenance: list[Provenance] = _field(provenance.provenance)
    regions: list[Region] = _field(regions.regions)
    quality_map: QualityMap = _field(quality.quality_map)
    traceback: Traceback = _field(traceback.traceback)
    version_at: int | None = _field(versions.version_at)
    versions: list[GraphVersion] = _field(versions.versions)


@strawberry.type(description="Writes; they need a token with the write (or admin) role.")
class Mutation:
    annotate_neuron: AnnotateResult = _field(mutations.annotate_neuron)
    flag_region: Region | None = _field(mutations.flag_region)


class Schema(strawberry.Schema):
    """strawberry's schema, without its logging of every error with a traceback: a bad
    input or an exceeded limit is the client's answer, not a server fault (and a
    traceback per request filled logs: one fuzz run wrote 110 KB in a few minutes). The
    app's ``format_error`` logs the unexpected ones, once."""

    def process_errors(self, errors: list, execution_context: Any = None) -> None:
        return None


def build_schema(params: ApiParams | None = None) -> strawberry.Schema:
    """The schema with the limits of ``params`` (the SDL does not depend on them)."""
    p = params or ApiParams()
    rules = validation_rules(p.max_depth, p.max_aliases)
    # Factories, not instances: extensions keep per-request state (execution_context).
    return Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=p.max_tokens),
            lambda: ParserCache(maxsize=256),
            lambda: LimitRules(rules),
            lambda: ValidationCache(maxsize=256),
            lambda: CostLimiter(max_cost=p.max_cost, default_first=default_first(p)),
        ],
    )


def sdl() -> str:
    """The schema in GraphQL SDL, as checked in at ``schema/graphql/schema.graphql``."""
    return build_schema().as_str() + "\n"
