"""Custom scalars.

``Id64`` carries body, synapse and supervoxel ids. JSON numbers lose integers
above 2**53 in JavaScript (and in many JSON parsers), so ids are **serialised as
decimal strings**; as input both a string and an integer literal are accepted.
The range is Neo4j's integer (signed 64-bit), the type ids are stored as.

``Long`` is for sizes and counts that may exceed GraphQL's 32-bit ``Int``
(voxel counts); it is a JSON number, exact up to 2**53.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON

from cxgraph.api.errors import BadInput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_id64(value: Any) -> int:
    """An id from a string or int input; rejects anything else with the value quoted."""
    if isinstance(value, bool):
        raise BadInput(f"expected a 64-bit id (decimal string or integer), got {value!r}")
    try:
        v = int(value, 10) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise BadInput(
            f"expected a 64-bit id (decimal string or integer), got {value!r}") from None
    if isinstance(value, float) and not value.is_integer():
        raise BadInput(f"expected an integer id, got {value!r}")
    if not INT64_MIN <= v <= INT64_MAX:
        raise BadInput(f"id {value!r} does not fit a signed 64-bit integer (Neo4j's id type)")
    return v


Id64 = NewType("Id64", int)
Long = NewType("Long", int)

SCALAR_MAP = {
    Id64: strawberry.scalar(
        name="Id64",
        description="A 64-bit id (body, synapse, supervoxel), serialised as a decimal string so "
                    "it stays exact beyond 2^53; input may be a string or an integer literal.",
        serialize=lambda v: str(int(v)),
        parse_value=parse_id64,
    ),
    Long: strawberry.scalar(
        name="Long",
        description="An integer that may exceed 32 bits (voxel counts); a JSON number.",
        serialize=int,
        parse_value=int,
    ),
}

__all__ = ["JSON", "SCALAR_MAP", "Id64", "Long", "parse_id64"]
