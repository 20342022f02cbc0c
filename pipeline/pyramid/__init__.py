"""Pyramids of the volumes a viewer shows: one stage per volume that a registered stage
writes (``pyramid_raw``, ``pyramid_aligned``, and ``pyramid_supervoxels`` /
``pyramid_segmentation`` as soon as a stage writes those). Imported after every other
stage package (``registry.STAGE_PACKAGES``), so it sees their outputs."""

import importlib

from pipeline import registry
from pipeline.engine import array
from pipeline.pyramid.stage import pyramid_stage

# volume -> downsampling: EM by mean, object ids by mode
SOURCES = {"raw": "mean", "aligned": "mean", "supervoxels": "mode", "segmentation": "mode"}

# the packages before this one, whatever imported this first (e.g. pipeline.pyramid.stage)
for _package in registry.STAGE_PACKAGES[:registry.STAGE_PACKAGES.index(__name__)]:
    importlib.import_module(_package)

for _source, _method in SOURCES.items():
    _producer = registry.producers().get(array(_source))
    if _producer is not None:
        _stage = registry.get(_producer)
        registry.register(pyramid_stage(_source, _method, _stage.layer, _stage.default))
