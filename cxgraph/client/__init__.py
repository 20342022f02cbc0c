"""The analysts' Python client: ``Client(url_or_workspace, token=...)`` answers with pandas
DataFrames through the GraphQL API (docs/client.md)."""

from cxgraph.client.client import Client
from cxgraph.client.transport import ClientError

__all__ = ["Client", "ClientError"]
