"""The traceback on scenarios it was not tuned on: each a phantom through every stage.

Larger runs, kept out of ``make test`` (``pytest -m slow tests/test_traceback_scenarios.py``;
about 2-4 minutes per scenario on 2 cores). The staining corner and clean regions are in
tests/test_traceback.py. Results: BENCHMARKS.md, "traceback scenarios".
"""

from __future__ import annotations

import pytest
from test_traceback import scenario_workspace

from pipeline.engine import Roi
from pipeline.traceback.engine import traceback

pytestmark = pytest.mark.slow

# (fault spec, region checked, expected root cause layer, expected conclusion(s)); the
# biology scenario is insect neuropil (fly-neuropil preset): ~100 synapses in the volume
# instead of ~2, enough for per-block synapse counts to differ measurably
SCENARIOS = {
    "alignment-fault": ("alignment-fault:z=6:9,shift=30", Roi((6, 0, 0), (9, 256, 256)),
                        "L2", ("processing-artifact", "processing-anomaly")),
    "low-contrast": ("low-contrast:z=0:16,y=0:128,x=0:128,strength=0.7",
                     Roi((0, 0, 0), (16, 128, 128)), "L1",
                     ("processing-artifact", "processing-anomaly")),
    "noise-burst": ("noise-burst:z=8:9,strength=0.9", Roi((8, 0, 0), (9, 256, 256)), "L1",
                    ("processing-artifact", "processing-anomaly")),
    "biology": ("fewer-synapses:z=0:16,y=128:256,x=128:256,strength=0.8",
                Roi((0, 128, 128), (16, 256, 256)), None, ("biology",)),
}


# Measured (BENCHMARKS.md): on insect morphology the synapses found with the pipeline's
# own segmentation are mostly wrong (precision 0.25, recall 0.08; with the true labels,
# on other fly volumes, 0.8 / 0.35): 8 in the region that holds 5, 4-8 in each other
# quarter (which hold 15-33), so the graph shows no deficit there and the traceback
# rightly answers "no difference".
_UNSEEN_L4 = pytest.mark.xfail(reason="L4 on fly-neuropil morphology: own-segmentation "
                               "partner F 0.13; the graph does not see the deficit",
                               strict=True)


@pytest.mark.parametrize("name", [pytest.param(n, marks=_UNSEEN_L4) if n == "biology" else n
                                  for n in sorted(SCENARIOS)])
def test_scenario(name, tmp_path):
    spec, region, root, conclusions = SCENARIOS[name]
    ws, _ = scenario_workspace(tmp_path, (spec,), seed=21,
                               preset="fly-neuropil" if name == "biology" else "tem")
    report = traceback(ws, region, name=name)
    verdicts = {lay["layer"]: lay["verdict"] for lay in report["layers"]}
    print(name, report["conclusion"], report["root_cause_layer"], verdicts, report["summary"])
    assert report["root_cause_layer"] == root, (verdicts, report["summary"])
    assert report["conclusion"] in conclusions, (verdicts, report["summary"])
