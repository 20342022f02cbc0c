"""traceback(region, reference): the layer-by-layer traceback of the served workspace."""

from __future__ import annotations

import asyncio

from cxgraph.api.errors import BadInput
from cxgraph.api.types import Info, Traceback, TracebackLayer


async def traceback(info: Info, region: str, reference: str | None = None,
                    name: str = "region") -> Traceback:
    """Compare `region` (z0:z1,y0:y1,x0:x1 voxels) with `reference` (default: the rest of
    the volume) from L5 down to L1 on the workspace's recorded quality; read-only (it does
    not flag the region: `cxgraph traceback` or `flagRegion` does)."""
    from cxgraph.errors import CxgraphError

    run = info.context.services.traceback
    if run is None:
        raise BadInput("traceback: this server was started without the pipeline's traceback "
                       "(`cxgraph serve` provides it)")
    root = info.context.services.provenance.root
    try:
        report = await asyncio.to_thread(run, root, region, reference, name)
    except (CxgraphError, ValueError) as e:
        raise BadInput(f"traceback: {e}") from None
    layers = [TracebackLayer(
        layer=lay["layer"], name=lay["name"], verdict=lay["verdict"],
        metric=(lay["strongest"] or {}).get("metric"),
        relative=(lay["strongest"] or {}).get("relative"),
        p_adjusted=(lay["strongest"] or {}).get("p_adjusted"),
        stage_runs=sorted({r for m in lay["metrics"] for r in m["stage_runs"]}))
        for lay in report["layers"]]
    rerun = next((a["command"] for a in report["actions"] if a["kind"] == "rerun"), None)
    return Traceback(conclusion=report["conclusion"], root_cause_layer=report["root_cause_layer"],
                     summary=report["summary"], layers=layers, rerun_command=rerun,
                     report=report)
