-- Retention (Store.purge_expired): finished executions by end time, and the blob columns, so
-- that a purge finds expired executions and checks whether a blob is still referenced
-- without reading every row. Partial: rows without an end time or a blob cost these nothing.
CREATE INDEX executions_by_end ON executions (end_time) WHERE end_time IS NOT NULL;
CREATE INDEX executions_by_input_blob ON executions (input_payload_blob) WHERE input_payload_blob IS NOT NULL;
CREATE INDEX executions_by_result_blob ON executions (result_blob) WHERE result_blob IS NOT NULL;
CREATE INDEX operations_by_input_blob ON operations (input_payload_blob) WHERE input_payload_blob IS NOT NULL;
CREATE INDEX operations_by_result_blob ON operations (result_blob) WHERE result_blob IS NOT NULL;
