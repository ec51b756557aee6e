-- Chained invokes: a child execution knows the parent execution (by ARN) and the
-- CHAINED_INVOKE operation of it that started it, so ending the child completes that
-- operation. Pause and resume (PauseDurableExecution): when a pause was asked for, why,
-- whether the execution timeout stands still meanwhile, and how long it has stood still.
ALTER TABLE executions ADD COLUMN parent_arn TEXT;
ALTER TABLE executions ADD COLUMN parent_operation_id TEXT;
ALTER TABLE executions ADD COLUMN tenant_id TEXT;
ALTER TABLE executions ADD COLUMN pause_time REAL;
ALTER TABLE executions ADD COLUMN pause_reason TEXT;
ALTER TABLE executions ADD COLUMN timeout_paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN paused_seconds REAL NOT NULL DEFAULT 0;
