-- Provenance store, version 1. Applied in file order by cxgraph.provenance;
-- every statement is idempotent (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TIMESTAMP NOT NULL
);

-- One invocation of the pipeline (cxgraph run / demo), grouping stage runs.
CREATE TABLE IF NOT EXISTS runs (
    run_id      VARCHAR PRIMARY KEY,
    command     VARCHAR,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status      VARCHAR NOT NULL          -- running | done | failed
);

-- One execution of one stage. Re-running a stage with the same parameters on the
-- same inputs reuses the stage run (its block ledger lets it resume).
CREATE TABLE IF NOT EXISTS stage_runs (
    stage_run_id   VARCHAR PRIMARY KEY,
    run_id         VARCHAR,
    stage          VARCHAR NOT NULL,
    layer          VARCHAR NOT NULL,      -- L1 .. L5
    status         VARCHAR NOT NULL,      -- running | done | failed
    attempts       INTEGER NOT NULL,
    params_json    VARCHAR NOT NULL,      -- the full parameter dataclass, as in cxgraph.toml
    params_hash    VARCHAR NOT NULL,
    inputs_json    VARCHAR NOT NULL,      -- {name: {path, sha256}}
    input_hash     VARCHAR NOT NULL,
    outputs_json   VARCHAR,               -- {name: {path, sha256}}
    output_hash    VARCHAR,
    code_revision  VARCHAR NOT NULL,      -- git commit, or 'unknown'
    code_dirty     BOOLEAN,
    model_id       VARCHAR,               -- sha256 of the weights (models.model_id)
    environment_json VARCHAR NOT NULL,    -- host, OS, Python, library versions
    device         VARCHAR NOT NULL,      -- cpu | cuda:N
    region_json    VARCHAR,               -- restricted to this region (z0,y0,x0,z1,y1,x1), if any
    started_at     TIMESTAMP NOT NULL,
    finished_at    TIMESTAMP,
    wall_s         DOUBLE,
    error          VARCHAR
);

-- The block ledger: one row per block of a stage run.
CREATE TABLE IF NOT EXISTS block_runs (
    stage_run_id   VARCHAR NOT NULL,
    block_id       BIGINT NOT NULL,
    status         VARCHAR NOT NULL,      -- running | done | failed
    attempts       INTEGER NOT NULL,
    write_roi      INTEGER[] NOT NULL,    -- z0, y0, x0, z1, y1, x1 (voxels)
    read_roi       INTEGER[] NOT NULL,
    worker         VARCHAR,
    io_s           DOUBLE,                -- seconds in zarr reads/writes
    compute_s      DOUBLE,                -- wall minus io
    bytes_read     BIGINT,
    bytes_written  BIGINT,
    peak_rss_mb    DOUBLE,                -- worker process peak RSS when the block ended
    started_at     TIMESTAMP,
    finished_at    TIMESTAMP,
    error          VARCHAR,
    PRIMARY KEY (stage_run_id, block_id)
);

-- Data and model files a stage read or wrote, by content hash.
CREATE TABLE IF NOT EXISTS artifacts (
    sha256        VARCHAR NOT NULL,
    stage_run_id  VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,       -- input | output | model
    name          VARCHAR NOT NULL,
    path          VARCHAR NOT NULL,
    bytes         BIGINT,
    PRIMARY KEY (stage_run_id, role, name)
);

-- Trained models: weights hash, what they are and how they were made.
CREATE TABLE IF NOT EXISTS models (
    model_id       VARCHAR PRIMARY KEY,   -- sha256 of the weights file
    name           VARCHAR NOT NULL,
    path           VARCHAR NOT NULL,
    architecture   VARCHAR,
    params_json    VARCHAR,
    trained_by     VARCHAR,               -- stage_run_id of the training run
    metrics_json   VARCHAR,
    created_at     TIMESTAMP NOT NULL
);

-- Quality metrics of every layer, per block / section / tile / region.
CREATE TABLE IF NOT EXISTS quality (
    layer         VARCHAR NOT NULL,
    stage         VARCHAR NOT NULL,
    stage_run_id  VARCHAR NOT NULL,
    block         BIGINT,
    section       INTEGER,
    tile          VARCHAR,
    region        VARCHAR,
    metric        VARCHAR NOT NULL,
    value         DOUBLE
);
