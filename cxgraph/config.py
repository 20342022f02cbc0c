"""The run configuration: one ``Params`` section per stage, held in ``cxgraph.toml``.

Each stage's parameter dataclass lives beside the stage; ``sections()`` is the
one place that lists them. ``Config.to_toml`` writes every parameter, defaults
included, so the file in a workspace is the complete record of a run.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from cxgraph.errors import ConfigError
from cxgraph.params import Params


@dataclasses.dataclass(frozen=True)
class BlockParams(Params):
    """How volumes are cut for blockwise work (all in voxels, z, y, x)."""

    block_shape: tuple[int, int, int] = (32, 128, 128)  # write region per block
    context: tuple[int, int, int] = (4, 16, 16)  # extra read margin on each side
    chunk_shape: tuple[int, int, int] = (32, 128, 128)  # zarr chunks; blocks align to them


@dataclasses.dataclass(frozen=True)
class ExecutorParams(Params):
    """Where blocks run."""

    kind: str = "serial"  # serial | dask
    workers: int = 2  # dask LocalCluster worker processes
    threads_per_worker: int = 1
    scheduler_address: str = ""  # an existing Dask scheduler instead of a LocalCluster
    max_retries: int = 2  # extra attempts for a failing block


@dataclasses.dataclass(frozen=True)
class Neo4jParams(Params):
    """The graph server. An empty ``uri`` means the project-managed server."""

    uri: str = ""  # e.g. bolt://host:7687 for an existing Neo4j 5 (or env NEO4J_URI)
    user: str = "neo4j"
    version: str = "5.26.19"  # managed server: Neo4j Community + APOC release
    port: int = 0  # managed server Bolt port on 127.0.0.1; 0 picks a free one
    heap_mb: int = 1024  # managed server JVM heap
    pagecache_mb: int = 512  # managed server page cache
    start_timeout_s: float = 180.0  # seconds for Bolt to answer after start
    query_timeout_s: float = 30.0  # analyst (read-only) queries
    batch_size: int = 5000  # rows per UNWIND write batch


def sections() -> dict[str, type[Params]]:
    """Every configuration section and its parameter class, in file order."""
    from cxgraph.api.params import ApiParams
    from cxgraph.graph.params import GraphParams
    from pipeline.align.params import AlignParams
    from pipeline.ingest import IngestParams
    from pipeline.phantom.params import PhantomParams

    return {
        "blocks": BlockParams,
        "executor": ExecutorParams,
        "neo4j": Neo4jParams,
        "graph": GraphParams,
        "phantom": PhantomParams,
        "api": ApiParams,
        "ingest": IngestParams,
        "align": AlignParams,
    }


class Config:
    """All sections of one run; immutable, built from defaults, TOML and overrides."""

    def __init__(self, values: dict[str, Params] | None = None):
        known = sections()
        values = dict(values or {})
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown configuration section(s) {unknown}; known: {sorted(known)}")
        self._values = {name: values.get(name) or cls() for name, cls in known.items()}

    def __getitem__(self, section: str) -> Any:
        try:
            return self._values[section]
        except KeyError:
            raise ConfigError(
                f"no configuration section {section!r}; known: {sorted(self._values)}"
            ) from None

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: p.to_dict() for name, p in self._values.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> Config:
        known = sections()
        unknown = sorted(set(data) - set(known) - {"workspace"})
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {unknown}; known: {sorted(known)}")
        return cls({n: known[n].from_dict(data.get(n), f"{where}[{n}]") for n in known})

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            data = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from e
        return cls.from_dict(data, where=str(path))

    def with_overrides(self, assignments: list[str]) -> Config:
        """Apply ``section.param=value`` strings, e.g. ``align.max_shift_px=40``."""
        data = self.to_dict()
        for a in assignments:
            key, sep, value = a.partition("=")
            section, dot, param = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"override {a!r}: expected section.param=value")
            if section not in data:
                raise ConfigError(f"override {a!r}: no section {section!r}; known: {sorted(data)}")
            data[section][param] = _parse_scalar(value.strip())
        return Config.from_dict(data, where="overrides")


def _parse_scalar(text: str) -> Any:
    """A TOML value if the text is one (numbers, booleans, lists), else the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
