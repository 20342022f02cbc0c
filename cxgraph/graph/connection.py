"""Drivers from a ``Connection`` (uri, user, password); no server management here.

The server itself (managed or external) is ``cxgraph.neo4j_server``'s business:
``connect(ws)`` returns the ``Connection`` for a workspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import neo4j

from cxgraph.errors import Neo4jServerError

if TYPE_CHECKING:
    from cxgraph.workspace import Workspace


class ConnectionLike(Protocol):
    uri: str
    user: str
    password: str


def open_driver(conn: ConnectionLike, max_pool: int = 32) -> neo4j.Driver:
    """A driver for ``conn``; checks that the server answers and the password is right."""
    drv = neo4j.GraphDatabase.driver(
        conn.uri, auth=(conn.user, conn.password), max_connection_pool_size=max_pool,
        connection_timeout=10.0,
        notifications_min_severity=neo4j.NotificationMinimumSeverity.OFF,
    )
    try:
        drv.verify_connectivity()
    except neo4j.exceptions.AuthError as e:
        drv.close()
        raise Neo4jServerError(
            f"Neo4j at {conn.uri} refused user {conn.user!r}: wrong password "
            "(check NEO4J_PASSWORD or the workspace's neo4j/password)"
        ) from e
    except (neo4j.exceptions.ServiceUnavailable, OSError) as e:
        drv.close()
        raise Neo4jServerError(
            f"no Neo4j answers at {conn.uri} ({e}); start it with `cxgraph neo4j start` "
            "or set NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD"
        ) from e
    return drv


def workspace_connection(ws: Workspace, start: bool = True) -> ConnectionLike:
    """The Neo4j a workspace uses (external if configured, else the managed server)."""
    from cxgraph import neo4j_server

    return neo4j_server.connect(ws, start=start)
