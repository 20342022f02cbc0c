"""The per-request context: who calls, the shared graph and stores, fresh loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cxgraph.api.auth import Principal, Role
from cxgraph.api.db import ApiGraph
from cxgraph.api.errors import Forbidden
from cxgraph.api.loaders import Loaders, make_loaders
from cxgraph.api.params import ApiParams


@dataclass
class Services:
    """What every request shares (built once by ``create_app``)."""

    graph: ApiGraph
    params: ApiParams
    provenance: Any  # cxgraph.api.provenance_store.ProvenanceReader (stage runs, quality)
    traceback: Any = None  # (root, region, reference, name) -> report (pipeline.traceback)


@dataclass
class Context:
    services: Services
    principal: Principal
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = make_loaders(self.services.graph)

    @property
    def graph(self) -> ApiGraph:
        return self.services.graph

    @property
    def params(self) -> ApiParams:
        return self.services.params

    def require(self, role: Role, action: str) -> None:
        """Raise ``Forbidden`` unless the caller's role includes ``role``."""
        if not self.principal.role.allows(role):
            who = "anonymous access" if self.principal.anonymous else (
                f"token {self.principal.token_id} ({self.principal.name})")
            raise Forbidden(
                f"{action} needs the {role.value} role; {who} has role "
                f"{self.principal.role.value}. Ask an admin for a {role.value} token "
                f"(`cxgraph token create --role {role.value}`).",
                needed=role.value, role=self.principal.role.value)


def get_context(services: Services, principal: Principal) -> Context:
    """A context with new DataLoaders (one set per request, never shared)."""
    return Context(services=services, principal=principal)
