-- Concurrency and rate limits of functions, as in SQLite (store/schema/013_concurrency_limits.sql).
-- A leaser of a limited function locks its row here first, so that servers leasing it at
-- once take turns: each counts the invocations running after the one before it committed.
CREATE TABLE function_limits (
    function_name TEXT COLLATE "C" PRIMARY KEY,
    concurrency BIGINT,
    tenant_concurrency BIGINT,
    rate_count BIGINT,
    rate_seconds DOUBLE PRECISION,
    tenant_rate_count BIGINT,
    tenant_rate_seconds DOUBLE PRECISION,
    reserved_concurrency BIGINT,
    next_start DOUBLE PRECISION
);
CREATE TABLE tenant_starts (
    function_name TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    next_start DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function_name, tenant_id)
);
CREATE INDEX executions_ready_by_function ON executions (function_name, ready_time) WHERE ready_time IS NOT NULL;
