"""Statistics of the phantom against published EM figures of (rodent) neuropil.

The ranges are wide on purpose (a small volume, a few dozen synapses), but a
phantom that is a toy in size or density falls outside them:

- Axon diameter 0.1-0.5 um, dendrite shaft 0.5-2 um: Shepherd & Harris 1998
  (J Neurosci 18:8300; CA1 unmyelinated axons 0.05-0.3 um, varicosities ~0.4 um);
  Harris & Kater 1994 (Annu Rev Neurosci 17:341; dendrites 0.5-2 um). We measure
  the median equivalent diameter sqrt(4A/pi) of 2-D profiles per section, which
  includes boutons and oblique cuts, so the accepted medians are axons 0.12-0.5 um,
  dendrites 0.5-2 um.
- Synapse density: 0.6-1.3 synapses/um^3 in rodent neocortex (DeFelipe et al. 1999,
  J Neurocytol 28:89; Merchan-Perez et al. 2009, Front Neuroanat 3:18, ~0.9/um^3;
  Kasthuri et al. 2015, Cell 162:648, ~1/um^3). Accepted here: 0.5-2.0/um^3.
- Volume fractions: axons ~40-60 %, dendrites ~20-35 %, glia ~10-20 % (Mishchenko
  et al. 2010, Neuron 67:1009; Chklovskii et al. 2002, Neuron 34:341). Accepted:
  axons 0.3-0.65, dendrites (+ somata) 0.15-0.45, glia 0.05-0.25.
- Extracellular space: a few per cent after chemical fixation, ~15-20 % in
  cryo-fixed tissue (Korogod et al. 2015, eLife 4:e05793). Accepted: 0.5-8 %.
- Membrane fraction: about 20-25 % of pixels are membrane in ISBI 2012 labels
  (Arganda-Carreras et al. 2015, Front Neuroanat 9:142; membranes drawn ~30 nm
  wide). We count voxels within 16 nm (2 px) of a boundary, a 32-nm band. Accepted:
  0.10-0.30.
"""

from __future__ import annotations

import numpy as np
import pytest
from phantom_helpers import load
from scipy import ndimage as ndi

from pipeline.phantom import PhantomParams, render_phantom
from pipeline.phantom.render import boundaries_yx


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    out = tmp_path_factory.mktemp("stats")
    p = PhantomParams(shape=(32, 448, 448), seed=21)
    render_phantom(out, p)
    d = load(out)
    lab = d["labels"]
    kind = dict(zip(d["bodies"]["body_id"], d["bodies"]["kind"], strict=True))
    n = int(lab.max()) + 1
    by_kind = {k: np.array([i for i, v in kind.items() if v == k], dtype=np.int64)
               for k in ("axon", "dendrite", "soma", "glia")}
    frac = {k: float(np.isin(lab, ids).mean()) for k, ids in by_kind.items()}
    diam = {}
    for k in ("axon", "dendrite"):
        ds = []
        for z in range(0, lab.shape[0], 4):
            a = np.bincount(lab[z].ravel().astype(np.int64), minlength=n)[by_kind[k]]
            ds.append(np.sqrt(4 * a[a > 20] / np.pi) * p.voxel_size[1] / 1000.0)
        diam[k] = float(np.median(np.concatenate(ds)))
    band = ndi.binary_dilation(boundaries_yx(lab), structure=np.ones((1, 3, 3), bool))
    return {"frac": frac, "diam": diam, "membrane": float(band.mean()),
            "ecs": float((lab == 0).mean()),
            "synapse_density": len(d["synapses"]["synapse_id"]) / p.volume_um3}


def test_object_diameters(stats):
    assert 0.12 <= stats["diam"]["axon"] <= 0.5, stats["diam"]
    assert 0.5 <= stats["diam"]["dendrite"] <= 2.0, stats["diam"]


def test_volume_fractions(stats):
    f = stats["frac"]
    assert 0.3 <= f["axon"] <= 0.65, f
    assert 0.15 <= f["dendrite"] + f["soma"] <= 0.45, f
    assert 0.05 <= f["glia"] <= 0.25, f
    assert 0.005 <= stats["ecs"] <= 0.08, stats["ecs"]


def test_membrane_fraction(stats):
    assert 0.10 <= stats["membrane"] <= 0.30, stats["membrane"]


def test_synapse_density(stats):
    assert 0.5 <= stats["synapse_density"] <= 2.0, stats["synapse_density"]
