"""Limits on what one request may ask: depth, page size, id lists, total size, time.

Each limit raises (or reports) a ``LimitExceeded`` whose extensions say which
limit (``limit``), its value (``max``), what was asked (``got``) and how to
narrow the query (``hint``):

===========  ==========================================  =====================
limit        checked                                      where
===========  ==========================================  =====================
depth        field nesting of the operation               validation rule
tokens       size of the query document                   parser (MaxTokensLimiter)
aliases      number of aliases                            validation (MaxAliasesLimiter)
first        page size of one list field                  resolver
ids          length of an id list argument                resolver
cost         estimated objects in the whole response      before execution
hops         shortestPath search length                   resolver
time         Neo4j transaction timeout per database call  database
===========  ==========================================  =====================
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    value_from_ast_untyped,
)
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule

from cxgraph.api.errors import LimitExceeded
from cxgraph.api.params import ApiParams

# Page size a list field has when the query does not pass `first` (capped by max_first).
DEFAULT_FIRST = 100
First = Annotated[int | None, strawberry.argument(
    description=f"page size; default {DEFAULT_FIRST} (or [api] max_first if lower)")]
# List fields without `first` and their worst-case size for the cost estimate.
UNPAGED_SIZES = {"regions": 100, "provenance": 3}


def default_first(params: ApiParams) -> int:
    return min(DEFAULT_FIRST, params.max_first)


def check_first(field: str, first: int | None, params: ApiParams) -> int:
    """The page size: ``first`` if 1 <= first <= max_first (``None``: the default page
    size), else a ``first`` limit error."""
    if first is None:
        return default_first(params)
    if first < 1 or first > params.max_first:
        raise LimitExceeded(
            "first",
            f"{field}(first: {first}) is outside the page-size limit 1..{params.max_first}.",
            maximum=params.max_first, got=first,
            hint=f"ask for at most first: {params.max_first} and fetch the next page with "
                 f"after: pageInfo.endCursor (or narrow the filter)",
        )
    return first


def check_ids(field: str, argument: str, ids: list[int], params: ApiParams) -> list[int]:
    """The list if it has at most ``max_ids`` entries, else an ``ids`` limit error."""
    if len(ids) > params.max_ids:
        raise LimitExceeded(
            "ids",
            f"{field}({argument}: [...]) has {len(ids)} ids; the limit is {params.max_ids}.",
            maximum=params.max_ids, got=len(ids),
            hint=f"split the ids into batches of {params.max_ids} and send one query per batch",
        )
    return ids


def check_hops(max_hops: int | None, params: ApiParams) -> int:
    if max_hops is None:
        return params.max_path_hops
    if max_hops < 1 or max_hops > params.max_path_hops:
        raise LimitExceeded(
            "hops",
            f"shortestPath(maxHops: {max_hops}) is outside 1..{params.max_path_hops}.",
            maximum=params.max_path_hops, got=max_hops,
            hint="search fewer hops, or raise minWeight so fewer edges are followed",
        )
    return max_hops


def time_limit_error(what: str, timeout_s: float) -> LimitExceeded:
    return LimitExceeded(
        "time",
        f"{what} ran longer than the time limit of {timeout_s:g} s (Neo4j transaction timeout).",
        maximum=timeout_s, got=None,
        hint="narrow the query: a smaller `first`, a higher minWeight or minConfidence, "
             "a smaller box, fewer ids, or fewer nested fields",
    )


# --- depth -----------------------------------------------------------------------
def _depth_rule(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        """Reports operations nested deeper than ``max_depth`` (``__`` fields not counted)."""

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = {
                d.name.value: d for d in self.context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            depth, path = _deepest(node.selection_set, fragments, 0, (), set())
            if depth > max_depth:
                hint = ("split it into several queries, e.g. fetch the partners' bodyIds "
                        "first and ask for their details with neurons(filter: {bodyIds: [...]})")
                self.report_error(GraphQLError(
                    f"query depth {depth} exceeds the depth limit of {max_depth} "
                    f"(at {'.'.join(path)}). Hint: {hint}",
                    node,
                    extensions={"code": "LIMIT_EXCEEDED", "limit": "depth", "max": max_depth,
                                "got": depth, "hint": hint},
                ))

    return DepthLimit


def _deepest(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    depth: int,
    path: tuple[str, ...],
    seen: set[str],
) -> tuple[int, tuple[str, ...]]:
    best = (depth, path)
    if selection_set is None:
        return best
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            if sel.name.value.startswith("__"):
                continue
            found = _deepest(sel.selection_set, fragments, depth + 1,
                             (*path, sel.name.value), seen)
        elif isinstance(sel, InlineFragmentNode):
            found = _deepest(sel.selection_set, fragments, depth, path, seen)
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
            frag = fragments.get(sel.name.value)
            found = _deepest(frag.selection_set if frag else None, fragments, depth, path,
                             seen | {sel.name.value})
        else:
            continue
        if found[0] > best[0]:
            best = found
    return best


def validation_rules(max_depth: int, max_aliases: int) -> list[type[ValidationRule]]:
    """The limit rules as classes built once per schema: strawberry's ValidationCache keys
    on the rule classes, so building them per request would defeat the cache."""
    return [_depth_rule(max_depth), max_aliases_rule(max_aliases)]


class LimitRules(AddValidationRules):
    """Adds the depth and alias limit rules (pass ``validation_rules(...)``)."""


# --- cost ------------------------------------------------------------------------
class CostLimiter(SchemaExtension):
    """Before execution: estimated result objects (products of `first` down each path)."""

    def __init__(self, *, max_cost: int, default_first: int = DEFAULT_FIRST):
        self.max_cost = max_cost
        self.default_first = default_first

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        doc = ctx.graphql_document
        if doc is not None and not ctx.result:
            fragments = {d.name.value: d for d in doc.definitions
                         if isinstance(d, FragmentDefinitionNode)}
            ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)
                   and (ctx.operation_name is None or
                        (d.name is not None and d.name.value == ctx.operation_name))]
            variables = ctx.variables or {}
            cost = sum(self._cost(op.selection_set, fragments, variables, 1) for op in ops[:1])
            if cost > self.max_cost:
                hint = ("ask for smaller pages (first), nest fewer list fields, "
                        "or split the request into several queries")
                ctx.result = GraphQLExecutionResult(data=None, errors=[GraphQLError(
                    f"the query may return about {cost} objects; the result-size limit is "
                    f"{self.max_cost} per request. Hint: {hint}",
                    extensions={"code": "LIMIT_EXCEEDED", "limit": "cost", "max": self.max_cost,
                                "got": cost, "hint": hint},
                )])
        yield

    def _cost(self, selection_set: SelectionSetNode | None, fragments: dict, variables: dict,
              multiplier: int) -> int:
        if selection_set is None:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                if sel.name.value.startswith("__"):
                    continue
                size = self._size(sel, variables)
                total += multiplier * size if size > 1 else 0
                total += self._cost(sel.selection_set, fragments, variables, multiplier * size)
            elif isinstance(sel, InlineFragmentNode):
                total += self._cost(sel.selection_set, fragments, variables, multiplier)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
                total += self._cost(fragments[sel.name.value].selection_set, fragments,
                                    variables, multiplier)
        return total

    def _size(self, field: FieldNode, variables: dict) -> int:
        for arg in field.arguments or ():
            if arg.name.value == "first":
                value = value_from_ast_untyped(arg.value, variables)
                return max(int(value), 1) if isinstance(value, int) else self.default_first
        if field.name.value in UNPAGED_SIZES:
            return UNPAGED_SIZES[field.name.value]
        return self.default_first if field.name.value in PAGED_FIELDS else 1


# List fields that take `first` (their default applies when it is not given).
PAGED_FIELDS = {
    "neurons", "partners", "connections", "synapses", "supervoxels", "merges", "qualityMap",
}
