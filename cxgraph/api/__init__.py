"""The GraphQL API and analyst HTTP entry of cxgraph (``cxgraph serve``).

- ``create_app(ws)``: the ASGI app (GraphQL at /graphql with GraphiQL, read-only
  Cypher at POST /cypher), bearer-token auth with read/write/admin roles.
- ``build_schema()`` / ``sdl()``: the strawberry schema and its SDL, checked in
  at ``schema/graphql/schema.graphql``.
- ``TokenStore``: the hashed token file ``WS/api_tokens.json``.
"""

import importlib
from typing import Any

_EXPORTS = {"ApiApp": "app", "create_app": "app", "Role": "auth", "TokenStore": "auth",
            "build_schema": "schema", "sdl": "schema"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: importing cxgraph.api.params must not load strawberry
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"cxgraph.api.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
