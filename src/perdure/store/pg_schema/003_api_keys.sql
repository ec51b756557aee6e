-- API keys (perdure keys create, checked by api/auth.py), as in SQLite, shared by every server
-- on the database. No secret is kept: the SigV4 secret is derived from the server secret and
-- secret_salt and checked against secret_sha256, and the bearer token is kept as its SHA-256.
-- A name is unique among the keys not revoked.
CREATE TABLE api_keys (
    access_key_id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    created_time DOUBLE PRECISION NOT NULL,
    revoked_time DOUBLE PRECISION,
    secret_salt TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    token_sha256 TEXT COLLATE "C" NOT NULL UNIQUE
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_time IS NULL;
