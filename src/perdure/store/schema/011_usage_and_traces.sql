-- What an execution's invocations used (issue 15): their time from lease to end summed
-- (compute_seconds, the duration Lambda bills), the CPU time their threads used, and
-- GB-seconds (each invocation's time times its function's memory in GB).
ALTER TABLE executions ADD COLUMN compute_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN cpu_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN gb_seconds REAL NOT NULL DEFAULT 0;
-- The W3C trace context the execution's spans belong to: its trace ID and the caller's span
-- (a traceparent header), fixed when it starts; NULL for one started before traces existed.
ALTER TABLE executions ADD COLUMN trace_parent TEXT;
