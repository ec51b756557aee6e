-- The dashboard's sessions of a key (api/dashboard/sessions.py) carry the generation they were
-- made in; signing out bumps it, so every cookie made before is refused from then on, by every
-- server on the database and after restarts.
ALTER TABLE api_keys ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
