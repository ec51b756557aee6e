-- The console's queries over many executions (service/console.py, the dashboard): listing
-- and counting by status with or without a function, searching by name across functions, and
-- the inbox of callbacks still open, oldest first. Each is a range of one index, so a page or
-- a count stays fast with 100,000 executions. The directions match the list's
-- ORDER BY start_time DESC, id DESC (read backwards for oldest first).
CREATE INDEX executions_by_status ON executions (status, start_time DESC, id DESC);
CREATE INDEX executions_by_function_status ON executions (function_name, status, start_time DESC, id DESC);
CREATE INDEX executions_by_name ON executions (name, start_time DESC, id DESC);
-- Partial: a callback leaves it once completed, and other operations never enter it.
CREATE INDEX operations_open_callbacks ON operations (start_time, callback_id)
    WHERE callback_id IS NOT NULL AND status = 'STARTED';
