-- Concurrency and rate limits of functions (issue 16; perdure.protocol.limits). One row per
-- function that has a limit: what its served code declares (the decorator's or template's,
-- written by each server that serves it), the ReservedConcurrentExecutions set through
-- PutFunctionConcurrency (which wins over the declared concurrency), and the state of its
-- rate: when it next lets an invocation start. Every server and worker on the database leases
-- within these, so the limits hold across all of them.
CREATE TABLE function_limits (
    function_name TEXT PRIMARY KEY NOT NULL,
    concurrency INTEGER,
    tenant_concurrency INTEGER,
    rate_count INTEGER,
    rate_seconds REAL,
    tenant_rate_count INTEGER,
    tenant_rate_seconds REAL,
    reserved_concurrency INTEGER,
    next_start REAL
);
-- When each tenant's rate next lets an invocation of a function start ('' for no TenantId).
-- Only tenants held back now are kept: a time already past holds nothing back, and is deleted.
CREATE TABLE tenant_starts (
    function_name TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    next_start REAL NOT NULL,
    PRIMARY KEY (function_name, tenant_id)
);
-- A limited function's ready executions, oldest first: leasing reads only as many as its
-- limits let start, and never the ready executions of other functions.
CREATE INDEX executions_ready_by_function ON executions (function_name, ready_time) WHERE ready_time IS NOT NULL;
