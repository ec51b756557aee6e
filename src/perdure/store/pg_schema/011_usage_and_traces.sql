-- What an execution's invocations used (issue 15): see store/schema/011_usage_and_traces.sql.
ALTER TABLE executions
    ADD COLUMN compute_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN cpu_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN gb_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN trace_parent TEXT;
