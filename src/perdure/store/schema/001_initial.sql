-- Executions, their operations and history, timers and checkpoint replies.
-- Times are seconds since the epoch (REAL). Payload columns hold text inline, or NULL with the
-- key of a blob in the matching *_blob column when the text is over the inline limit.

CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    input_payload TEXT,
    input_payload_blob TEXT,
    result TEXT,
    result_blob TEXT,
    error TEXT,
    timeout_seconds INTEGER,
    retention_days INTEGER,
    ready_time REAL,
    lease_owner TEXT,
    lease_expiry REAL,
    invocation INTEGER NOT NULL DEFAULT 0,
    invocation_secret TEXT NOT NULL DEFAULT '',
    invocation_start REAL,
    failed_invocations INTEGER NOT NULL DEFAULT 0,
    woken_during_invocation INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    event_count INTEGER NOT NULL DEFAULT 0,
    operation_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (function_name, name)
);
CREATE INDEX executions_by_function ON executions (function_name, start_time DESC, id);
CREATE INDEX executions_by_start ON executions (start_time DESC, id);
CREATE INDEX executions_ready ON executions (ready_time) WHERE ready_time IS NOT NULL;
CREATE INDEX executions_leased ON executions (lease_expiry) WHERE lease_owner IS NOT NULL;

CREATE TABLE operations (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    parent_id TEXT,
    name TEXT,
    sub_type TEXT,
    start_time REAL,
    end_time REAL,
    input_payload TEXT,
    input_payload_blob TEXT,
    result TEXT,
    result_blob TEXT,
    error TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    next_attempt_time REAL,
    scheduled_end_time REAL,
    callback_id TEXT,
    callback_timeout_seconds INTEGER NOT NULL DEFAULT 0,
    callback_heartbeat_timeout_seconds INTEGER NOT NULL DEFAULT 0,
    replay_children INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    PRIMARY KEY (execution_id, id)
);
CREATE INDEX operations_by_position ON operations (execution_id, position);
-- Partial, so the operations that are not callbacks cost this index nothing.
CREATE UNIQUE INDEX operations_by_callback ON operations (callback_id) WHERE callback_id IS NOT NULL;

CREATE TABLE events (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    event_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution_id, event_id)
);

CREATE TABLE timers (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    operation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_time REAL NOT NULL,
    PRIMARY KEY (execution_id, operation_id, kind)
);
CREATE INDEX timers_by_due ON timers (due_time);

CREATE TABLE checkpoint_replies (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    client_token TEXT NOT NULL,
    reply TEXT NOT NULL,
    PRIMARY KEY (execution_id, client_token)
);
