"""Bearer tokens with roles (read < write < admin), stored hashed in the workspace.

The token file is ``WS/api_tokens.json`` (mode 0600)::

    {"version": 1, "tokens": [{"id": "3f9a1c2b", "name": "alice", "role": "read",
      "hash": "sha256:<hex>", "created": "2025-01-01T00:00:00+00:00", "revoked": null}]}

A token reads ``cxg_<id>_<secret>``: the id finds the record, the SHA-256 of the
whole token is compared in constant time. The secret is 256 random bits, so a
fast hash is enough (a stolen file cannot be brute-forced); a slow password
hash (scrypt) would only add tens of milliseconds to every request. The plain
token is shown once, at creation, and never stored.

The server re-reads the file when it changes (checked on every request by
``stat``), so ``cxgraph token revoke`` takes effect without a restart.

Example::

    >>> import tempfile, pathlib
    >>> store = TokenStore(pathlib.Path(tempfile.mkdtemp()) / "api_tokens.json")
    >>> token, record = store.create("alice", "read")
    >>> store.authenticate(token).role
    <Role.READ: 'read'>
    >>> store.revoke(record.token_id)
    >>> store.authenticate(token) is None
    True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from pathlib import Path

from cxgraph.errors import ConfigError, WorkspaceError
from cxgraph.workspace import atomic_write_bytes

log = logging.getLogger(__name__)

TOKEN_FILE = "api_tokens.json"
_PREFIX = "cxg"


class Role(enum.StrEnum):
    """What a token may do; each role includes the ones below it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ConfigError(
                f"unknown role {value!r}; expected one of {[r.value for r in cls]}"
            ) from None


_RANK = {Role.READ: 1, Role.WRITE: 2, Role.ADMIN: 3}


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """One stored token (the hash, never the token itself)."""

    token_id: str
    name: str
    role: Role
    hash: str
    created: str
    revoked: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.token_id, "name": self.name, "role": self.role.value,
                "hash": self.hash, "created": self.created, "revoked": self.revoked}

    @classmethod
    def from_dict(cls, d: dict) -> TokenRecord:
        return cls(token_id=d["id"], name=d.get("name", ""), role=Role.parse(d["role"]),
                   hash=d["hash"], created=d.get("created", ""), revoked=d.get("revoked"))


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id, name and role (``token_id`` empty for anonymous)."""

    token_id: str
    name: str
    role: Role

    @property
    def anonymous(self) -> bool:
        return not self.token_id


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The token file of one workspace; safe to share between server threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._records: dict[str, TokenRecord] = {}

    @classmethod
    def for_workspace(cls, root: Path) -> TokenStore:
        return cls(Path(root) / TOKEN_FILE)

    # --- reading -------------------------------------------------------------
    def records(self) -> list[TokenRecord]:
        """Every token record, revoked ones included, oldest first."""
        with self._lock:
            self._refresh()
            return list(self._records.values())

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token, else ``None``."""
        parts = token.strip().split("_")
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        with self._lock:
            self._refresh()
            record = self._records.get(parts[1])
        if record is None or record.revoked:
            return None
        if not hmac.compare_digest(record.hash, hash_token(token.strip())):
            return None
        return Principal(token_id=record.token_id, name=record.name, role=record.role)

    def capability(self, principal: Principal, purpose: str) -> str:
        """A key standing for ``principal``'s token in a URL, for ``purpose`` only, for clients
        that send no header (dvidtools, under navis's ``fetch_mesh_neuron``): the token's id
        and an HMAC of ``purpose`` keyed by the token's stored hash; dies with the token."""
        with self._lock:
            self._refresh()
            record = self._records[principal.token_id]
        mac = hmac.new(record.hash.encode(), purpose.encode(), hashlib.sha256).hexdigest()
        return f"{record.token_id}-{mac[:32]}"

    def authenticate_capability(self, key: str, purpose: str) -> Principal | None:
        """The principal of a ``capability`` key for ``purpose``, else ``None``."""
        token_id, _, mac = key.partition("-")
        with self._lock:
            self._refresh()
            record = self._records.get(token_id)
        if record is None or record.revoked:
            return None
        principal = Principal(token_id=record.token_id, name=record.name, role=record.role)
        return principal if hmac.compare_digest(self.capability(principal, purpose), key) \
            else None

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records = None, {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        if st.st_mode & 0o077:
            log.warning("%s is readable by group/others (mode %o); chmod 600 it",
                        self.path, st.st_mode & 0o777)
        try:
            data = json.loads(self.path.read_text())
            records = [TokenRecord.from_dict(d) for d in data.get("tokens", [])]
        except (ValueError, KeyError, ConfigError) as e:
            raise WorkspaceError(
                f"{self.path}: not a valid token file ({e}); fix or delete it and create "
                f"tokens again with `cxgraph token create`"
            ) from e
        self._records = {r.token_id: r for r in records}
        self._stamp = stamp

    # --- writing (CLI) -------------------------------------------------------
    def create(self, name: str, role: Role | str) -> tuple[str, TokenRecord]:
        """Mint a token; returns ``(token, record)``. The token is not stored anywhere."""
        role = role if isinstance(role, Role) else Role.parse(role)
        with self._lock:
            self._refresh()
            token_id = secrets.token_hex(4)
            while token_id in self._records:
                token_id = secrets.token_hex(4)
            token = f"{_PREFIX}_{token_id}_{secrets.token_urlsafe(32).replace('_', '-')}"
            record = TokenRecord(token_id=token_id, name=name, role=role,
                                 hash=hash_token(token), created=_now())
            self._write([*self._records.values(), record])
        return token, record

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token by id (it stays listed, marked revoked)."""
        with self._lock:
            self._refresh()
            record = self._records.get(token_id)
            if record is None:
                raise ConfigError(
                    f"no token with id {token_id!r} in {self.path}; "
                    f"`cxgraph token list` shows the ids"
                )
            if record.revoked is None:
                record = dataclasses.replace(record, revoked=_now())
                self._write([record if r.token_id == token_id else r
                             for r in self._records.values()])
        return record

    def _write(self, records: list[TokenRecord]) -> None:
        data = {"version": 1, "tokens": [r.to_dict() for r in records]}
        atomic_write_bytes(self.path, json.dumps(data, indent=1).encode(), mode=0o600)
        os.chmod(self.path, 0o600)
        self._stamp = None
        self._refresh()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
