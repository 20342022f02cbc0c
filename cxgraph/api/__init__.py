"""The GraphQL API and analyst HTTP entry of cxgraph (``cxgraph serve``).

- ``create_app(ws)``: the ASGI app (GraphQL at /graphql with GraphiQL, read-only
  Cypher at POST /cypher), bearer-token auth with read/write/admin roles.
- ``build_schema()`` / ``sdl()``: the strawberry schema and its SDL, checked in
  at ``schema/graphql/schema.graphql``.
- ``TokenStore``: the hashed token file ``WS/api_tokens.json``.
"""

from cxgraph.api.app import ApiApp, create_app
from cxgraph.api.auth import Role, TokenStore
from cxgraph.api.schema import build_schema, sdl

__all__ = ["ApiApp", "Role", "TokenStore", "build_schema", "create_app", "sdl"]
