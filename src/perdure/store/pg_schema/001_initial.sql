-- Executions, their operations and history, timers and checkpoint replies: the SQLite schema
-- (store/schema/001_initial.sql) in PostgreSQL's dialect.
-- Times are seconds since the epoch (DOUBLE PRECISION, as the model's floats). Payload columns
-- hold text inline, or NULL with the key of a blob in the matching *_blob column when the text
-- is over the inline limit (or holds a NUL character, which PostgreSQL text cannot store).
-- IDs use the "C" collation: byte order, as SQLite compares them, and cheaper comparisons.

CREATE TABLE executions (
    id TEXT COLLATE "C" PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time DOUBLE PRECISION NOT NULL,
    end_time DOUBLE PRECISION,
    input_payload TEXT,
    input_payload_blob TEXT,
    result TEXT,
    result_blob TEXT,
    error TEXT,
    timeout_seconds BIGINT,
    retention_days BIGINT,
    ready_time DOUBLE PRECISION,
    lease_owner TEXT,
    lease_expiry DOUBLE PRECISION,
    invocation BIGINT NOT NULL DEFAULT 0,
    invocation_secret TEXT NOT NULL DEFAULT '',
    invocation_start DOUBLE PRECISION,
    failed_invocations BIGINT NOT NULL DEFAULT 0,
    woken_during_invocation BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL DEFAULT 0,
    event_count BIGINT NOT NULL DEFAULT 0,
    operation_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (function_name, name)
);
CREATE INDEX executions_by_function ON executions (function_name, start_time DESC, id);
CREATE INDEX executions_by_start ON executions (start_time DESC, id);
CREATE INDEX executions_ready ON executions (ready_time) WHERE ready_time IS NOT NULL;
CREATE INDEX executions_leased ON executions (lease_expiry) WHERE lease_owner IS NOT NULL;

CREATE TABLE operations (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    id TEXT COLLATE "C" NOT NULL,
    position BIGINT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    parent_id TEXT COLLATE "C",
    name TEXT,
    sub_type TEXT,
    start_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION,
    input_payload TEXT,
    input_payload_blob TEXT,
    result TEXT,
    result_blob TEXT,
    error TEXT,
    attempt BIGINT NOT NULL DEFAULT 0,
    next_attempt_time DOUBLE PRECISION,
    scheduled_end_time DOUBLE PRECISION,
    callback_id TEXT COLLATE "C" UNIQUE,
    callback_timeout_seconds BIGINT NOT NULL DEFAULT 0,
    callback_heartbeat_timeout_seconds BIGINT NOT NULL DEFAULT 0,
    replay_children BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL,
    PRIMARY KEY (execution_id, id)
);
CREATE INDEX operations_by_position ON operations (execution_id, position);
CREATE INDEX operations_by_version ON operations (execution_id, version);

CREATE TABLE events (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    event_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution_id, event_id)
);

CREATE TABLE timers (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    operation_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    due_time DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (execution_id, operation_id, kind)
);
CREATE INDEX timers_by_due ON timers (due_time);

CREATE TABLE checkpoint_replies (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    client_token TEXT NOT NULL,
    reply TEXT NOT NULL,
    PRIMARY KEY (execution_id, client_token)
);
