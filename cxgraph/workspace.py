"""The workspace: the one directory a run works in (a public contract).

::

    WS/
      cxgraph.toml        every parameter of every stage ([workspace] holds the layout version)
      volumes.zarr/       zarr v3 group: raw, aligned, affinities, supervoxels, segmentation, ...
                          each volume an OME-Zarr 0.5 image group: <name>/s0 (+ s1, s2, ... pyramid)
      tables/             Parquet: supervoxels, agglomeration, synapses, connections, quality, ...
      provenance.duckdb   the provenance store (Parquet exports in tables/provenance/)
      neo4j/              the managed Neo4j server's data, logs and password (owner only: 0700/0600)
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from cxgraph import ome
from cxgraph.config import Config
from cxgraph.errors import WorkspaceError

LAYOUT_VERSION = 1


class Workspace:
    """A workspace directory. Use ``Workspace.create`` or ``Workspace.open``."""

    def __init__(self, root: Path, config: Config):
        self.root = Path(root).resolve()
        self.config = config

    # --- paths -------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "cxgraph.toml"

    @property
    def zarr_path(self) -> Path:
        return self.root / "volumes.zarr"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def provenance_path(self) -> Path:
        return self.root / "provenance.duckdb"

    @property
    def neo4j_dir(self) -> Path:
        return self.root / "neo4j"

    @property
    def work_dir(self) -> Path:
        """Where unfinished stage runs keep their outputs until they are put in place."""
        return self.root / ".work"

    def table_path(self, name: str) -> Path:
        return self.tables_dir / f"{name}.parquet"

    # --- lifecycle ---------------------------------------------------------
    @classmethod
    def create(cls, root: Path | str, config: Config | None = None) -> Workspace:
        """Create (or reopen, when it exists) a workspace; writes ``cxgraph.toml``."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} is a file, not a workspace directory; pass a "
                                 "directory (new or existing) to --workspace")
        if (root / "cxgraph.toml").exists():
            ws = cls.open(root)
            if config is not None:
                ws.set_config(config)
            return ws
        try:
            root.mkdir(parents=True, exist_ok=True)
            ws = cls(root, config or Config())
            ws.tables_dir.mkdir(exist_ok=True)
            zarr.open_group(str(ws.zarr_path), mode="a", zarr_format=3)
            ws.set_config(ws.config)
        except OSError as e:
            raise WorkspaceError(f"cannot create the workspace {root}: {_os_reason(e)}") from e
        return ws

    @classmethod
    def open(cls, root: Path | str) -> Workspace:
        root = Path(root)
        path = root / "cxgraph.toml"
        if not path.exists():
            raise WorkspaceError(
                f"{root} is not a cxgraph workspace (no cxgraph.toml); "
                f"create one with `cxgraph init {root}` or pass --workspace to a run"
            )
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise WorkspaceError(f"{path}: not valid TOML ({e})") from e
        version = data.get("workspace", {}).get("layout_version")
        if version != LAYOUT_VERSION:
            raise WorkspaceError(
                f"{root} was written with workspace layout version {version!r}; this cxgraph "
                f"reads version {LAYOUT_VERSION}. Use the cxgraph release that wrote it, or "
                f"re-run the pipeline into a new workspace."
            )
        return cls(root, Config.from_dict(data, where=str(path)))

    def check_writable(self) -> None:
        """Refuse, before anything runs, a workspace whose parts cannot be written (a
        read-only or immutable ``volumes.zarr``, tables or provenance store): a stage
        would otherwise fail only when it puts its outputs in place."""
        dirs = [self.root, self.zarr_path, self.tables_dir, self.work_dir]
        if self.zarr_path.is_dir():
            dirs += sorted(p for p in self.zarr_path.iterdir() if p.is_dir())
        for d in dirs:
            if not d.is_dir():
                continue
            try:
                fd, probe = tempfile.mkstemp(dir=d, prefix=".cxgraph-write-test-")
                os.close(fd)
                os.unlink(probe)
            except OSError as e:
                raise WorkspaceError(f"{d} is not writable ({_os_reason(e)}); cxgraph writes "
                                     "its results there. Make it writable (chmod, "
                                     "chattr -i, a read-write mount) or use another "
                                     "--workspace") from e
        files = [self.config_path, self.provenance_path]
        files += sorted(self.zarr_path.glob("*/zarr.json")) if self.zarr_path.is_dir() else []
        for f in files:
            if f.is_file():
                try:
                    os.close(os.open(f, os.O_WRONLY | os.O_APPEND))
                except OSError as e:
                    raise WorkspaceError(f"{f} is not writable ({_os_reason(e)}); make it "
                                         "writable or use another --workspace") from e

    def set_config(self, config: Config) -> None:
        """Replace the configuration and write it (atomically) to ``cxgraph.toml``."""
        self.config = config
        text = f"[workspace]\nlayout_version = {LAYOUT_VERSION}\n\n" + config.to_toml()
        atomic_write_bytes(self.config_path, text.encode())

    # --- volumes -------------------------------------------------------------
    def volumes(self, mode: str = "a") -> zarr.Group:
        return zarr.open_group(str(self.zarr_path), mode=mode, zarr_format=3)

    def has_array(self, name: str) -> bool:
        return (self.zarr_path / name / "zarr.json").exists()

    def array_path(self, name: str) -> Path:
        """The directory of array ``name``'s data: level 0 of a volume (``<name>/s0``)."""
        return data_path(self.zarr_path, name)

    def array(self, name: str, mode: str = "r") -> zarr.Array:
        """Array ``name`` (for a volume, its full-resolution level ``s0``)."""
        if not self.has_array(name):
            raise WorkspaceError(
                f"{self.zarr_path} has no array {name!r}; run the stage that writes it first"
            )
        return zarr.open_array(str(self.array_path(name)), mode=mode)

    def create_array(
        self,
        name: str,
        shape: Sequence[int],
        dtype: Any,
        chunks: Sequence[int] | None = None,
        voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
        offset: Sequence[float] = (0.0, 0.0, 0.0),
        attrs: dict[str, Any] | None = None,
        fill_value: Any = 0,
        group: zarr.Group | None = None,
    ) -> zarr.Array:
        """(Re)create an array (in ``volumes.zarr``, or in ``group``) and return it.

        ``voxel_size`` and ``offset`` (nm; z, y, x) go in its attributes with
        ``dimension_units``; its axes (``attrs["axes"]``, default z, y, x / c, z, y, x) are
        its zarr ``dimension_names``. A volume named without a slash becomes an OME-Zarr
        image group ``<name>/`` whose level 0 ``<name>/s0`` is the array returned; a name
        with a slash (``aligned/s2``) is a plain array there, e.g. a pyramid level.
        """
        chunks = tuple(chunks or self.config["blocks"].chunk_shape)
        chunks = tuple(min(c, s) for c, s in zip(chunks, shape, strict=False)) + tuple(
            chunks[len(shape) :]
        )
        axes = list((attrs or {}).get("axes") or ome.default_axes(len(shape)))
        root = group if group is not None else self.volumes()
        image = ome.is_image(axes) and "/" not in name
        parent = root.create_group(name, overwrite=True) if image else root
        arr = parent.create_array(
            ome.level_name(0) if image else name, shape=tuple(shape), dtype=np.dtype(dtype),
            chunks=chunks, fill_value=fill_value, overwrite=True, dimension_names=axes,
        )
        arr.attrs.update(
            {"voxel_size": list(map(float, voxel_size)), "offset": list(map(float, offset)),
             "dimension_units": ome.dimension_units(axes, voxel_size), **(attrs or {}),
             "axes": axes}
        )
        if image or "/" in name:
            self.refresh_image(name, Path(root.store.root) / root.path)  # type: ignore[attr-defined]
        return arr

    def refresh_image(self, name: str, zarr_root: Path | None = None) -> None:
        """Rewrite the OME-Zarr metadata of the image holding array ``name`` (the image
        itself, or one of its levels ``<image>/sK``) from the levels on disk."""
        image = name.split("/")[0]
        ome.write_image_metadata((zarr_root or self.zarr_path) / image)

    def write_table(self, name: str, table: pa.Table) -> Path:
        """Write ``tables/<name>.parquet`` atomically (never half-written)."""
        path = self.table_path(name)
        write_parquet(path, table)
        return path

    def read_table(self, name: str) -> pa.Table:
        path = self.table_path(name)
        if not path.exists():
            raise WorkspaceError(f"{path} does not exist; run the stage that writes it first")
        return pq.read_table(path)


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def data_path(zarr_root: Path, name: str) -> Path:
    """Where array ``name`` keeps its data under ``zarr_root``: level 0 of an OME-Zarr image
    group (``<name>/s0``) or the array itself (``<name>``, e.g. ``tiles`` or ``aligned/s2``).
    Workspaces written before volumes were image groups hold plain arrays: read as they are."""
    level0 = Path(zarr_root) / name / ome.level_name(0)
    return level0 if (level0 / "zarr.json").exists() else Path(zarr_root) / name


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write a Parquet file by rename, so no reader sees it half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write a file by rename so readers never see it half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
