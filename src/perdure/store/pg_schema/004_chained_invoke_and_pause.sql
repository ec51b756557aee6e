-- Chained invokes and pause/resume, as in SQLite (store/schema/004_chained_invoke_and_pause.sql):
-- a child execution's parent (by ARN) and the CHAINED_INVOKE operation that started it; when a
-- pause was asked for, why, whether the execution timeout stands still, and for how long it has.
ALTER TABLE executions
    ADD COLUMN parent_arn TEXT,
    ADD COLUMN parent_operation_id TEXT COLLATE "C",
    ADD COLUMN tenant_id TEXT,
    ADD COLUMN pause_time DOUBLE PRECISION,
    ADD COLUMN pause_reason TEXT,
    ADD COLUMN timeout_paused BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN paused_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
