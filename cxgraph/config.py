"""The run configuration: one ``Params`` section per stage, held in ``cxgraph.toml``.

Each stage's parameter dataclass lives beside the stage; ``sections()`` is the
one place that lists them. ``Config.to_toml`` writes every parameter, defaults
included, so the file in a workspace is the complete record of a run.

``[[regional]]`` entries hold parameters set for one region only (``cxgraph rerun
--region R --set ...``): blocks meeting the region run with them, every other block
with the section's own values, in a regional re-run and in every later whole run alike.
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

    block_shape: tuple[int, int, int] = (32, 128, 128)  # write region per block; stages of
    # whole sections (ingest, stitch) take block_shape[0] sections per block
    chunk_shape: tuple[int, int, int] = (32, 128, 128)  # zarr chunks; blocks align to them
    # (each stage declares its own read context: it knows what its algorithm needs)

    def __post_init__(self) -> None:
        for name in ("block_shape", "chunk_shape"):
            value = getattr(self, name)
            if len(value) != 3 or any(v <= 0 for v in value):
                raise ConfigError(f"blocks.{name}: expected three positive voxel counts "
                                  f"(z, y, x), got {list(value)}")
        if any(b % c for b, c in zip(self.block_shape, self.chunk_shape, strict=True)):
            raise ConfigError(
                f"blocks.block_shape {list(self.block_shape)} is not a multiple of "
                f"blocks.chunk_shape {list(self.chunk_shape)}; parallel blocks would write "
                "the same chunk (set blocks.chunk_shape too, e.g. equal to the block shape)")


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
    # how long a transaction retries a transient failure before a clear error (with the
    # driver's 30 s default, a dead server took ~60 s to a raw ServiceUnavailable)
    retry_s: float = 10.0
    transaction_memory_mb: int = 512  # managed server: heap one transaction may use
    # (db.memory.transaction.max; a runaway analyst query fails, the server lives)
    batch_size: int = 5000  # rows per UNWIND write batch


@dataclasses.dataclass(frozen=True)
class RegionalOverride:
    """``assignments`` (``section.param=value``) for the blocks meeting ``region``
    ([z0, y0, x0, z1, y1, x1] in voxels)."""

    region: tuple[int, ...]
    assignments: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"region": list(self.region), "set": list(self.assignments)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RegionalOverride:
        if not isinstance(data, dict) or set(data) != {"region", "set"}:
            raise ConfigError(f"{where}: expected a table with 'region' (six voxel "
                              "coordinates) and 'set' (section.param=value strings)")
        region, sets = data["region"], data["set"]
        if not (isinstance(region, list) and len(region) == 6
                and all(isinstance(v, int) for v in region)
                and all(region[k] < region[k + 3] for k in range(3))):
            raise ConfigError(f"{where}.region: expected [z0, y0, x0, z1, y1, x1] with "
                              f"z0 < z1 etc., got {region!r}")
        if not (isinstance(sets, list) and sets and all(isinstance(a, str) for a in sets)):
            raise ConfigError(f"{where}.set: expected a list of section.param=value, "
                              f"got {sets!r}")
        return cls(tuple(region), tuple(sets))

    def keys(self) -> dict[str, str]:
        """``section.param`` -> the assignment setting it."""
        return {a.partition("=")[0].strip(): a for a in self.assignments}


_SECTIONS: dict[str, type[Params]] = {}


def register_section(name: str, cls: type[Params]) -> type[Params]:
    """Make ``[name]`` a configuration section holding ``cls``; stages call this for their own.

    Re-registering the same class is a no-op; another class under a taken name is an error.
    """
    known = _SECTIONS.get(name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ConfigError(f"configuration section {name!r} is already {known.__qualname__}")
    _SECTIONS[name] = cls
    return cls


def sections() -> dict[str, type[Params]]:
    """Every registered configuration section and its parameter class, in file order."""
    return dict(_SECTIONS)


class Config:
    """All sections of one run; immutable, built from defaults, TOML and overrides.

    Sections are those registered with ``register_section`` (the core's here, each
    stage's by the stage itself). A section in a file whose class is not registered
    in this process (e.g. a stage's, read by ``cxgraph serve``, which loads no
    stages) is kept verbatim, so writing the file back loses nothing; it is
    validated by any process that registers it. ``strict=True`` refuses it.
    """

    def __init__(self, values: dict[str, Params] | None = None,
                 unregistered: dict[str, dict[str, Any]] | None = None,
                 regional: tuple[RegionalOverride, ...] = ()):
        known = sections()
        values = dict(values or {})
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown configuration section(s) {unknown}; known: {sorted(known)}")
        self._values = {name: values.get(name) or cls() for name, cls in known.items()}
        self._unregistered = {k: dict(v) for k, v in (unregistered or {}).items()
                              if k not in known}
        self.regional = tuple(regional)

    def _refresh(self) -> None:
        """Take in sections registered since this configuration was made (their values from
        the file when it had them, else the defaults)."""
        for name, cls in sections().items():
            if name not in self._values:
                raw = self._unregistered.pop(name, None)
                self._values[name] = cls.from_dict(raw, f"[{name}]") if raw else cls()

    def __getitem__(self, section: str) -> Any:
        self._refresh()
        try:
            return self._values[section]
        except KeyError:
            hint = (" (the stage that owns it is not loaded in this process)"
                    if section in self._unregistered else "")
            raise ConfigError(
                f"no configuration section {section!r}{hint}; known: {sorted(self._values)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        self._refresh()
        out: dict[str, Any] = {**{name: p.to_dict() for name, p in self._values.items()},
                               **{k: dict(v) for k, v in self._unregistered.items()}}
        if self.regional:
            out["regional"] = [r.to_dict() for r in self.regional]
        return out

    def replace(self, section: str, params: Params) -> Config:
        """This configuration with one section replaced."""
        self._refresh()
        return Config({**self._values, section: params}, self._unregistered, self.regional)

    # --- parameters for one region ---------------------------------------------------
    def with_regional(self, region: list[int], assignments: list[str]) -> Config:
        """This configuration with ``assignments`` set for the blocks meeting ``region``
        only (validated first; a parameter set again for the same region is replaced)."""
        self.with_overrides(assignments)  # raises on a bad assignment
        entry = RegionalOverride.from_dict({"region": list(region), "set": list(assignments)},
                                           "regional override")
        out, merged = [], False
        for r in self.regional:
            if r.region == entry.region:
                entry = RegionalOverride(r.region, tuple({**r.keys(), **entry.keys()}.values()))
                merged = True
                out.append(entry)
            else:
                out.append(r)
        if not merged:
            out.append(entry)
        return Config(dict(self._values), self._unregistered, tuple(out))

    def without_regional(self) -> Config:
        self._refresh()
        return Config(dict(self._values), self._unregistered)

    def at(self, region: list[int]) -> Config:
        """The parameters blocks meeting ``region`` run with (regional entries applied)."""
        meets = [r for r in self.regional
                 if all(r.region[k] < region[k + 3] and region[k] < r.region[k + 3]
                        for k in range(3))]
        return self.without_regional().with_overrides(
            [a for r in meets for a in r.assignments]) if meets else self.without_regional()

    def regional_params(self, section: str) -> list[tuple[tuple[int, ...], Params]]:
        """(region, the section's parameters there) for each regional entry touching it."""
        base = self.without_regional()
        return [(r.region, base.with_overrides(list(r.assignments))[section])
                for r in self.regional
                if any(k.partition(".")[0] == section for k in r.keys())]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config", strict: bool = False
                  ) -> Config:
        known = sections()
        unknown = sorted(set(data) - set(known) - {"workspace", "regional"})
        if unknown and strict:
            raise ConfigError(f"{where}: unknown section(s) {unknown}; known: {sorted(known)}")
        for name in unknown:
            if not isinstance(data[name], dict):
                raise ConfigError(f"{where}: [{name}] must be a table of parameters")
        regional = data.get("regional", [])
        if not isinstance(regional, list):
            raise ConfigError(f"{where}: 'regional' must be an array of tables ([[regional]])")
        config = cls({n: known[n].from_dict(data.get(n), f"{where}[{n}]") for n in known},
                     {n: data[n] for n in unknown},
                     tuple(RegionalOverride.from_dict(r, f"{where}[[regional]] {i + 1}")
                           for i, r in enumerate(regional)))
        for r in config.regional:  # regional assignments are checked like the rest (those
            # of sections this process has not registered, by a process that has)
            config.without_regional().with_overrides(
                [a for a in r.assignments if a.partition(".")[0].strip() in known])
        return config

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
        data = self.to_dict()  # (refreshes the sections)
        for a in assignments:
            key, sep, value = a.partition("=")
            section, dot, param = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"override {a!r}: expected section.param=value")
            if section not in self._values:
                raise ConfigError(
                    f"override {a!r}: no section {section!r}; known: {sorted(self._values)}")
            data[section][param] = _parse_scalar(value.strip())
        return Config.from_dict(data, where="overrides")


def _parse_scalar(text: str) -> Any:
    """A TOML value if the text is one (numbers, booleans, lists), else the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _register_core() -> None:
    from cxgraph.api.params import ApiParams
    from cxgraph.graph.params import GraphParams

    for name, cls in (("blocks", BlockParams), ("executor", ExecutorParams),
                      ("neo4j", Neo4jParams), ("graph", GraphParams), ("api", ApiParams)):
        register_section(name, cls)


_register_core()
