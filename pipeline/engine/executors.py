"""Executors: run a stage's blocks, serially or on Dask, with the ledger that makes it resumable.

``run_blockwise(run, process_block, ctx, blocks, executor)`` calls
``process_block(ctx, block)`` for every block not yet done in this stage run
(see ``cxgraph.provenance``), serially or on a Dask cluster (a ``LocalCluster``
or any scheduler address) — the same function either way. Each block is marked
running (its attempt counted) before it starts and done, with its I/O figures,
chunk hashes and quality rows, after it ends, so a run killed part-way resumes
where it stopped and keeps what it finished. A block that raises is tried again
up to ``max_retries`` times, then the run fails with every error listed.

``process_block`` is a top-level (picklable) function of the stage; ``ctx`` is
its picklable ``BlockContext``. It returns its quality rows
(``[{"metric": ..., "value": ..., "section": ...}, ...]``) or None.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

from cxgraph.config import ExecutorParams
from cxgraph.errors import BlockError, ConfigError
from cxgraph.provenance import StageRun
from pipeline.engine.blocks import Block, counting_io

log = logging.getLogger(__name__)

ProcessBlock = Callable[[Any, Block], list[dict[str, Any]] | None]


def execute_block(process_block: ProcessBlock, ctx: Any, block: Block) -> dict[str, Any]:
    """Run one block where it is scheduled; never raises (errors travel back as text)."""
    t0 = time.perf_counter()
    stats: dict[str, Any] = {"worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        with counting_io() as io:
            # the block's own parameters (a region's, where one was set for it)
            block_ctx = ctx.for_block(block) if hasattr(ctx, "for_block") else ctx
            quality = process_block(block_ctx, block) or []
        stats["quality"] = list(quality)
        stats["chunk_hashes"] = io.chunk_hashes
        stats["error"] = None
    except Exception as e:  # noqa: BLE001 - reported to the ledger and retried
        stats["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
        io = None
    wall = time.perf_counter() - t0
    stats["io_s"] = io.io_s if io else None
    stats["compute_s"] = wall - (io.io_s if io else 0.0)
    stats["bytes_read"] = io.bytes_read if io else None
    stats["bytes_written"] = io.bytes_written if io else None
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stats


def run_blockwise(
    run: StageRun,
    process_block: ProcessBlock,
    ctx: Any,
    blocks: list[Block],
    executor: ExecutorParams,
    description: str | None = None,
) -> dict[str, int]:
    """Process every block of ``blocks`` not yet done in ``run``."""
    done = run.done_blocks()
    todo = [b for b in blocks if b.block_id not in done]
    log.info("%s: %d blocks, %d already done, %d to run (%s executor)", run.stage,
             len(blocks), len(blocks) - len(todo), len(todo), executor.kind)
    if not todo:
        failed: dict[int, str] = {}
    elif executor.kind == "serial":
        failed = _run_serial(run, process_block, ctx, todo, executor, description)
    elif executor.kind == "dask":
        failed = _run_dask(run, process_block, ctx, todo, executor, description)
    else:
        raise ConfigError(f"executor.kind {executor.kind!r}: expected 'serial' or 'dask'")
    if failed:
        details = "\n".join(f"block {b}: {err.splitlines()[0]}"
                            for b, err in sorted(failed.items()))
        raise BlockError(f"{run.stage}: {len(failed)} block(s) failed after "
                         f"{executor.max_retries + 1} attempts:\n{details}")
    return {"blocks": len(blocks), "skipped": len(blocks) - len(todo), "ran": len(todo)}


def progress(total: int, desc: str, unit: str = "block") -> tqdm:
    """A progress bar on stderr for a long step (blocks, sections, pairs, batches); shown on
    a terminal only, and removed when the step ends (``cxgraph run`` ends with a summary)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=None, leave=False,
                dynamic_ncols=True)


def _progress(total: int, run: StageRun, description: str | None):
    return progress(total, f"{description or run.stage}: blocks")


def _run_serial(run, process_block, ctx, todo, executor, description) -> dict[int, str]:
    failed: dict[int, str] = {}
    with _progress(len(todo), run, description) as bar:
        for block in todo:
            for _attempt in range(executor.max_retries + 1):
                run.block_started(block)
                stats = execute_block(process_block, ctx, block)
                run.block_finished(block.block_id, stats, stats["error"])
                if stats["error"] is None:
                    failed.pop(block.block_id, None)
                    break
                failed[block.block_id] = stats["error"]
                log.warning("%s block %d failed: %s", run.stage, block.block_id,
                            stats["error"].splitlines()[0])
            bar.update()
    return failed


def _run_dask(run, process_block, ctx, todo, executor, description) -> dict[int, str]:
    from dask.distributed import Client, LocalCluster, as_completed

    if executor.scheduler_address:
        client, cluster = Client(executor.scheduler_address), None
    else:
        cluster = LocalCluster(n_workers=executor.workers,
                               threads_per_worker=executor.threads_per_worker,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    failed: dict[int, str] = {}
    try:
        ctx_future = client.scatter(ctx, broadcast=True)  # sent once, not with every block
        by_key = {}
        attempts = {b.block_id: 0 for b in todo}
        blocks = {b.block_id: b for b in todo}

        def submit(block: Block):
            run.block_started(block)
            attempts[block.block_id] += 1
            fut = client.submit(execute_block, process_block, ctx_future, block, pure=False,
                                key=f"{run.stage}-{block.block_id}-{attempts[block.block_id]}")
            by_key[fut.key] = block.block_id
            return fut

        pending = as_completed([submit(b) for b in todo])
        with _progress(len(todo), run, description) as bar:
            for fut in pending:
                block_id = by_key.pop(fut.key)
                try:
                    stats = fut.result()
                except Exception as e:  # noqa: BLE001 - e.g. KilledWorker: the worker died
                    stats = {"error": f"{type(e).__name__}: {e}"}
                run.block_finished(block_id, stats, stats["error"])
                if stats["error"] is None:
                    failed.pop(block_id, None)
                    bar.update()
                elif attempts[block_id] <= executor.max_retries:
                    failed[block_id] = stats["error"]
                    pending.add(submit(blocks[block_id]))
                else:
                    failed[block_id] = stats["error"]
                    bar.update()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return failed
