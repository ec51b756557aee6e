-- The console's queries over many executions, as in SQLite (store/schema/006_console_indexes.sql):
-- listing and counting by status with or without a function, searching by name across
-- functions (in byte order, as prefix search compares), and the inbox of callbacks still open,
-- oldest first. Each is a range of one index, so a page or a count stays fast with 100,000
-- executions.
CREATE INDEX executions_by_status ON executions (status, start_time DESC, id DESC);
CREATE INDEX executions_by_function_status ON executions (function_name, status, start_time DESC, id DESC);
CREATE INDEX executions_by_name ON executions ((name COLLATE "C"), start_time DESC, id DESC);
-- Partial: a callback leaves it once completed, and other operations never enter it.
CREATE INDEX operations_open_callbacks ON operations (start_time, callback_id)
    WHERE callback_id IS NOT NULL AND status = 'STARTED';
