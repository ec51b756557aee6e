-- Where PostgreSQL's schema had drifted from SQLite's (found by tests/store/test_schema_agreement.py),
-- it takes SQLite's shape:
-- - Callback IDs are unique through a partial index, so the operations that are not callbacks
--   cost it nothing: a full unique index holds an entry for every NULL too. The column's UNIQUE
--   constraint was that full index. Lookups by callback ID (callback_id = %s) use the partial
--   one, as an equality is never true of NULL.
-- - operations_by_version goes, as it went from SQLite when checkpoints were made cheaper: every
--   write of an operation changes its version, so the index cost a write each time, for
--   operations_changed_since, which finds one execution's operations by operations_by_position.
-- - The session generation is a BIGINT, as every other integer here: SQLite's INTEGER is 64
--   bits wide, PostgreSQL's 32.
CREATE UNIQUE INDEX operations_by_callback ON operations (callback_id) WHERE callback_id IS NOT NULL;
ALTER TABLE operations DROP CONSTRAINT operations_callback_id_key;
DROP INDEX operations_by_version;
ALTER TABLE api_keys ALTER COLUMN session_generation TYPE BIGINT;
