"""The one exception hierarchy of cxgraph.

Messages say what was expected, what was found, where, and how to fix it.
Driver and library errors are re-raised from these with ``raise ... from``.
"""


class CxgraphError(Exception):
    """Base class of every error cxgraph raises on purpose."""


class ConfigError(CxgraphError):
    """A parameter or configuration file is invalid."""


class WorkspaceError(CxgraphError):
    """A workspace is missing, incomplete, or written by another schema version."""


class InputDataError(CxgraphError):
    """Input data is unreadable or has the wrong shape, dtype or values."""


class Neo4jServerError(CxgraphError):
    """The managed Neo4j server cannot be installed, started or reached."""


class GraphError(CxgraphError):
    """A graph query or write failed; the message carries the query."""


class ProvenanceError(CxgraphError):
    """The provenance store is inconsistent or a stage run cannot be recorded."""


class BlockError(CxgraphError):
    """A block of a blockwise stage failed after all its attempts."""


class QueryRefused(GraphError):
    """The read-only analyst entry refused a query before running it (a write, LOAD CSV,
    another user's transactions, a procedure outside the allowlist)."""


class QueryTimeout(GraphError):
    """A query ran past its transaction time limit."""


class QueryTerminated(GraphError):
    """A query's transaction was ended from outside (TERMINATE TRANSACTIONS, a shutdown)."""


class ResultTooLarge(GraphError):
    """A result passed the row or byte cap of the entry it was asked through."""


class GraphUnavailable(GraphError):
    """Neo4j stopped answering (killed, restarted, unreachable) while a query ran."""
