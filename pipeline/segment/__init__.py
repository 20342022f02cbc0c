"""L3 segment: stages that turn the aligned volume into supervoxels and bodies."""

from pipeline import registry
from pipeline.segment import smooth

registry.register(smooth.STAGE)
