-- Provenance store, version 2: the stage engine (run identity, attempts, per-block
-- output hashes, regional runs, id counters). Idempotent, applied after 001.

-- What makes a stage run the same run: stage + its own params + input content
-- hashes + code fingerprint (+ model, region and base run). Equal identity and
-- outputs on disk stamped by the run = nothing to do.
ALTER TABLE stage_runs ADD COLUMN IF NOT EXISTS identity VARCHAR;
ALTER TABLE stage_runs ADD COLUMN IF NOT EXISTS code_fingerprint VARCHAR;   -- sha256 of the stage's modules
ALTER TABLE stage_runs ADD COLUMN IF NOT EXISTS base_stage_run_id VARCHAR;  -- a regional run patches this run's outputs
-- status gains 'interrupted': a run found 'running' when the next run took the workspace lock.

-- Each attempt at a stage run (a resume is a new attempt; earlier ones are never overwritten).
CREATE TABLE IF NOT EXISTS stage_attempts (
    stage_run_id   VARCHAR NOT NULL,
    attempt        INTEGER NOT NULL,
    run_id         VARCHAR,               -- the pipeline invocation (runs.run_id)
    status         VARCHAR NOT NULL,      -- running | done | failed | interrupted
    code_revision  VARCHAR NOT NULL,
    code_dirty     BOOLEAN,
    started_at     TIMESTAMP NOT NULL,
    finished_at    TIMESTAMP,
    wall_s         DOUBLE,
    error          VARCHAR,
    PRIMARY KEY (stage_run_id, attempt)
);

-- What each pipeline invocation did with each stage: ran, resumed or reused a finished run.
CREATE TABLE IF NOT EXISTS run_stages (
    run_id         VARCHAR NOT NULL,
    stage          VARCHAR NOT NULL,
    stage_run_id   VARCHAR NOT NULL,
    action         VARCHAR NOT NULL,      -- ran | resumed | reused
    region_json    VARCHAR,
    recorded_at    TIMESTAMP NOT NULL
);

-- Per block: sha256 of every chunk it wrote, by output: {output: {"z.y.x": sha256}}.
ALTER TABLE block_runs ADD COLUMN IF NOT EXISTS output_hashes_json VARCHAR;

-- The blocks that make up each finished output, and which stage run wrote each one
-- (a regional run inherits its base run's blocks outside the region). An output's
-- hash is the sha256 of its sorted "block:sha256" lines, so it is computed from the
-- ledger, never by re-reading the volume.
CREATE TABLE IF NOT EXISTS output_blocks (
    stage_run_id         VARCHAR NOT NULL,
    output               VARCHAR NOT NULL,
    block_id             BIGINT NOT NULL,   -- -1: written whole, not by blocks
    sha256               VARCHAR NOT NULL,
    source_stage_run_id  VARCHAR NOT NULL,
    PRIMARY KEY (stage_run_id, output, block_id)
);

-- Id counters (body ids are minted here, never reused; see cxgraph/ids.py).
CREATE TABLE IF NOT EXISTS id_counters (
    kind      VARCHAR PRIMARY KEY,
    next_id   BIGINT NOT NULL
);
