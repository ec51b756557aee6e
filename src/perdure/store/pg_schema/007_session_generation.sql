-- The dashboard's sessions of a key, as in SQLite (store/schema/007_session_generation.sql):
-- a cookie carries the generation it was made in, and signing out bumps it, so every cookie
-- made before is refused from then on, by every server on the database and after restarts.
ALTER TABLE api_keys ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
