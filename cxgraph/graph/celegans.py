"""C. elegans connectomes from the ``cect`` package as an edge list + a neuron table.

``cect`` (C. elegans Connectome Toolbox) ships the published datasets (Cook et
al. 2019 hermaphrodite and male, Witvliet 2020, ...) as connection matrices,
and its ``cect.Cells`` module lists which cells are neurons and which muscles.
From them, for each cell of a dataset:

- ``kind``: ``neuron`` (``cect.Cells.is_any_neuron``), ``muscle``
  (``is_known_muscle``) or ``other`` (glia, pharyngeal epithelium, gland,
  hypodermis, intestine, ...);
- ``instance`` and ``name``: the cell name (``AVAL``);
- ``type``: the cell class, by :func:`cell_type` (``AVAL`` -> ``AVA``);
- ``class``: cect's WormAtlas classification (``interneuron``, ``body wall muscle``);
- ``status``: ``Traced`` (the published reconstructions are complete).

Edges: ``Generic_CS`` as ``chemical``, ``Generic_GJ`` as ``electrical``, weights
as published (Cook 2019: EM serial sections of contact, not synapse counts).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import re

import numpy as np
import polars as pl

from cxgraph.errors import InputDataError

# Ventral-cord motor-neuron classes, numbered along the body (VB1..VB11 are class VB);
# the same prefixes cect's ``remove_leading_index_zero`` knows.
_NUMBERED_CLASSES = ("AS", "DA", "DB", "DD", "VA", "VB", "VC", "VD")
_SYNCLASSES = {"Generic_CS": "chemical", "Generic_GJ": "electrical"}


def _cells():
    try:
        from cect import Cells
    except ImportError as e:
        raise InputDataError(
            "--from-cect needs the `cect` package (`make setup` installs it; or "
            "pip install 'cect>=0.3')") from e
    return Cells


def cell_type(name: str) -> str:
    """The cell class of a C. elegans cell name (WormAtlas style).

    Rule, in order: a numbered ventral-cord motor neuron loses its number
    (``VB11`` -> ``VB``); a body-wall muscle loses its number (``MDL07`` -> ``MDL``,
    its quadrant); a cell of a left/right pair (cect's ``is_bilateral_left/right``)
    loses the ``L``/``R``; then a stem of 4+ letters ending in ``D``/``V`` whose
    ventral/dorsal counterpart is also a cell loses that letter (``IL1DL`` -> ``IL1``,
    ``RMED`` -> ``RME``, ``SABVL`` -> ``SAB``; ``RIVL`` stays ``RIV``). On Cook 2019
    this gives the 118 neuron classes of WormAtlas for the 302 neurons.

    >>> [cell_type(c) for c in ("AVAL", "VB11", "IL1DL", "RMED", "RIVL", "I2R", "MVL03")]
    ['AVA', 'VB', 'IL1', 'RME', 'RIV', 'I2', 'MVL']
    """
    cells = _cells()
    m = re.fullmatch(r"([A-Z]{2})(\d+)", name)
    if m and m.group(1) in _NUMBERED_CLASSES:
        return m.group(1)
    if name in cells.BODY_WALL_MUSCLE_NAMES:
        return name.rstrip("0123456789")
    stem = name[:-1] if cells.is_bilateral_left(name) or cells.is_bilateral_right(name) else name
    if len(stem) >= 4 and stem[-1] in "DV":
        other = stem[:-1] + ("V" if stem[-1] == "D" else "D")
        known = set(cells.ALL_PREFERRED_CELL_NAMES)
        if known & {other, other + "L", other + "R"}:
            return stem[:-1]
    return stem


def cell_kind(name: str) -> str:
    """``neuron``, ``muscle`` or ``other`` from cect's cell lists."""
    cells = _cells()
    if cells.is_any_neuron(name):
        return "neuron"
    if cells.is_known_muscle(name):
        return "muscle"
    return "other"


@functools.cache
def _classification() -> dict[str, str]:
    with contextlib.redirect_stdout(io.StringIO()):  # cect prints every group it visits
        return dict(_cells().get_primary_classification())


def load_dataset(reader: str):
    """cect's dataset ``reader``: module ``cect.readers.<reader>`` or
    ``cect.readers.<reader>Reader`` (``Cook2019Herm``, ``WitvlietDataReader8``), read
    from cect's bundled cache (no download)."""
    _cells()
    import pkgutil

    import cect.readers

    available = sorted(m.name for m in pkgutil.iter_modules(cect.readers.__path__))
    module = next((m for m in (reader, reader + "Reader") if m in available), None)
    if module is None:
        short = [m.removesuffix("Reader") for m in available]
        raise InputDataError(f"--from-cect {reader!r}: cect has no such reader; it has {short}")
    mod = importlib.import_module(f"cect.readers.{module}")
    with contextlib.redirect_stdout(io.StringIO()):
        return mod.get_instance(from_cache=True)


def dataset_tables(ds) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(edges, neurons) of a loaded cect dataset, in cxgraph's import format.

    ``edges``: pre, post, weight, type (``chemical``/``electrical``), one row per
    non-zero matrix entry (gap junctions appear in both directions, as in cect).
    ``neurons``: name, instance, type, kind, class, status for every cell.
    """
    nodes = [str(n) for n in ds.nodes]
    frames = []
    for synclass, kind in _SYNCLASSES.items():
        if synclass not in ds.connections:
            continue
        m = np.asarray(ds.connections[synclass])
        i, j = np.nonzero(m)
        frames.append(pl.DataFrame({
            "pre": [nodes[k] for k in i], "post": [nodes[k] for k in j],
            "weight": m[i, j].round().astype(np.int64), "type": [kind] * len(i)}))
    if not frames:
        raise InputDataError(f"cect dataset has none of {list(_SYNCLASSES)}; "
                             f"it has {list(ds.connections)}")
    classes = _classification()
    neurons = pl.DataFrame({
        "name": nodes, "instance": nodes, "type": [cell_type(n) for n in nodes],
        "kind": [cell_kind(n) for n in nodes], "class": [classes.get(n) for n in nodes],
        "status": ["Traced"] * len(nodes)}, schema_overrides={"class": pl.Utf8})
    return pl.concat(frames), neurons


def cect_tables(reader: str = "Cook2019Herm") -> tuple[pl.DataFrame, pl.DataFrame]:
    """(edges, neurons) of cect's dataset ``reader``; see :func:`dataset_tables`."""
    return dataset_tables(load_dataset(reader))
