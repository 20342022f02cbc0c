"""Pyramids of the volumes a viewer shows: one stage per volume that a registered stage
writes (``pyramid_raw``, ``pyramid_aligned``, and ``pyramid_supervoxels`` /
``pyramid_segmentation`` as soon as a stage writes those). Imported after every other
stage package (``registry.STAGE_PACKAGES``), so it sees their outputs."""

from pipeline import registry
from pipeline.engine import array
from pipeline.pyramid.stage import pyramid_stage

# volume -> downsampling: EM by mean, object ids by mode
SOURCES = {"raw": "mean", "aligned": "mean", "supervoxels": "mode", "segmentation": "mode"}

for _source, _method in SOURCES.items():
    _producer = registry.producers().get(array(_source))
    if _producer is not None:
        _stage = registry.get(_producer)
        registry.register(pyramid_stage(_source, _method, _stage.layer, _stage.default))
