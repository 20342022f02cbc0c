"""Skeletons and meshes of the neuPrint front door (cxgraph/api/shapes.py) on phantom bodies.

    python benchmarks/bench_shapes.py [--shape 64,512,512] [--bodies 10]

Grows the phantom's neuropil (``pipeline.phantom.morphology.generate``, 40 x 8 x 8 nm),
writes its labels as a workspace's ``segmentation``, and times, for the largest neurite
bodies, the first (made) and second (cached) ``skeleton_swc`` and ``mesh_ngmesh``. The
first includes finding the body (a scan of the whole volume). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np

from cxgraph.api.shapes import mesh_ngmesh, skeleton_swc
from cxgraph.workspace import Workspace
from pipeline.phantom.morphology import KIND_CODES, generate
from pipeline.phantom.params import PhantomParams


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="64,512,512")
    ap.add_argument("--bodies", type=int, default=10)
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    params = PhantomParams(shape=shape)
    morph = generate(params, shape, np.random.default_rng(0))
    ws = Workspace.create(tempfile.mkdtemp(prefix="bench_shapes_"))
    seg = ws.create_array("segmentation", shape, np.uint64, chunks=(32, 256, 256),
                          voxel_size=params.voxel_size)
    seg[:] = morph.labels.astype(np.uint64)
    ids, sizes = np.unique(morph.labels[morph.labels > 0], return_counts=True)
    kind = {code: name for name, code in KIND_CODES.items()}
    neurites = [(int(i), int(n)) for i, n in zip(ids, sizes, strict=True)
                if kind[int(morph.kind_of[i])] in ("dendrite", "axon")]
    rows = []
    for body, voxels in sorted(neurites, key=lambda t: -t[1])[:args.bodies]:
        mesh, t_mesh = timed(mesh_ngmesh, ws.root, body)
        _, t_mesh2 = timed(mesh_ngmesh, ws.root, body)
        swc, t_skel = timed(skeleton_swc, ws.root, body)
        _, t_skel2 = timed(skeleton_swc, ws.root, body)
        rows.append({"body": body, "kind": kind[int(morph.kind_of[body])], "voxels": voxels,
                     "mesh_vertices": int(np.frombuffer(mesh[:4], np.uint32)[0]),
                     "skeleton_nodes": sum(1 for line in swc.splitlines()
                                           if line and not line.startswith("#")),
                     "mesh_s": round(t_mesh, 3), "mesh_cached_s": round(t_mesh2, 4),
                     "skeleton_s": round(t_skel, 3), "skeleton_cached_s": round(t_skel2, 4)})
    med = {k: float(np.median([r[k] for r in rows]))
           for k in ("voxels", "mesh_s", "mesh_cached_s", "skeleton_s", "skeleton_cached_s")}
    print(json.dumps({"shape": shape, "cpu": platform.processor() or platform.machine(),
                      "median": med, "bodies": rows}, indent=2))


if __name__ == "__main__":
    main()
