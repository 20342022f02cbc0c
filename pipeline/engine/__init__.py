"""The stage engine: how a stage is declared (``Stage``), cut into blocks and run.

- ``stage.py`` — the ``Stage`` declaration and artifact kinds (``array``, ``table``, ...);
- ``context.py`` — what a stage's functions see (``StageContext``, ``BlockContext``);
- ``blocks.py`` — ``Roi``, ``Block``, ``BlockGrid``, counted and hashed reads/writes;
- ``executors.py`` — serial and Dask execution with the block ledger;
- ``identity.py`` — run identity: stamps, input hashes, code fingerprints;
- ``run.py`` — ``run_stage``: the one lifecycle every stage goes through.

The stage graph (registration, order, ``run_pipeline``) is ``pipeline.registry``.
"""

from pipeline.engine.blocks import Block, BlockGrid, Roi
from pipeline.engine.context import BlockContext, StageContext
from pipeline.engine.run import StageResult, run_stage
from pipeline.engine.stage import Artifact, Stage, array, graph, source, table

__all__ = ["Artifact", "Block", "BlockContext", "BlockGrid", "Roi", "Stage", "StageContext",
           "StageResult", "array", "graph", "run_stage", "source", "table"]
