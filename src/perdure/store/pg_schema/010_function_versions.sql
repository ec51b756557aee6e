-- Function versions and aliases, as in SQLite (store/schema/010_function_versions.sql): code
-- (a bundle's blob key) and configuration numbered per function; the digest finds the version
-- that registering the same code and configuration again reuses.
CREATE TABLE function_versions (
    function_name TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    code_key TEXT COLLATE "C" NOT NULL,
    config TEXT NOT NULL,
    created_time DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function_name, version)
);
CREATE UNIQUE INDEX function_versions_by_digest ON function_versions (function_name, digest);
-- A bundle is shared by every version (of any function) whose code is the same: its blob goes with the last.
CREATE INDEX function_versions_by_code ON function_versions (code_key);

CREATE TABLE function_aliases (
    function_name TEXT COLLATE "C" NOT NULL,
    alias TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (function_name, alias),
    FOREIGN KEY (function_name, version) REFERENCES function_versions (function_name, version)
);

ALTER TABLE executions ADD COLUMN function_version BIGINT;
-- The versions executions still in the store run or ran, which retention keeps.
CREATE INDEX executions_by_function_version ON executions (function_name, function_version);
