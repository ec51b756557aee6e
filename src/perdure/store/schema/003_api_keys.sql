-- API keys (perdure keys create, checked by api/auth.py). No secret is kept: the SigV4 secret
-- is derived from the server secret and secret_salt and checked against secret_sha256, and the
-- bearer token is kept as its SHA-256. A name is unique among the keys not revoked.
CREATE TABLE api_keys (
    access_key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_time REAL NOT NULL,
    revoked_time REAL,
    secret_salt TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_time IS NULL;
