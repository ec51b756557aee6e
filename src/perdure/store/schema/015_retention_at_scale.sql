-- Retention at scale (issue 17): a purge reads only the executions that are expired, as two
-- index ranges, rather than every execution ended over a day ago (which executions_by_end
-- gave it: most of a table kept 30 days). Each range holds only finished executions.
--
-- Executions with a retention of their own, by the time they expire. An index on the
-- expression rather than a column: every row, old or new, is in it as soon as it is created
-- (nothing to backfill, nothing for the statements that end an execution to keep up to date).
-- store/purging.py writes the expression exactly as here, or the index would not serve it.
CREATE INDEX executions_expiring ON executions (end_time + retention_days * 86400)
    WHERE retention_days IS NOT NULL AND end_time IS NOT NULL;
-- Executions kept for the service's default period, by end: they expire in that order.
CREATE INDEX executions_ended_by_default ON executions (end_time)
    WHERE retention_days IS NULL AND end_time IS NOT NULL;
DROP INDEX executions_by_end;
