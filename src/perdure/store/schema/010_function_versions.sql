-- Function versions (issue 13): a function's code, as a bundle in the blob store, and its
-- configuration, numbered 1, 2, 3 per function as Lambda numbers them. ``digest`` hashes code
-- and configuration together: registering the same again finds and reuses the version.
CREATE TABLE function_versions (
    function_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    code_key TEXT NOT NULL,
    config TEXT NOT NULL,
    created_time REAL NOT NULL,
    PRIMARY KEY (function_name, version)
);
CREATE UNIQUE INDEX function_versions_by_digest ON function_versions (function_name, digest);
-- A bundle is shared by every version (of any function) whose code is the same: its blob goes with the last.
CREATE INDEX function_versions_by_code ON function_versions (code_key);

-- Aliases, as in Lambda: a name for one version of a function (``live`` -> 3).
CREATE TABLE function_aliases (
    function_name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (function_name, alias),
    FOREIGN KEY (function_name, version) REFERENCES function_versions (function_name, version)
);

-- The version an execution started on, which all its invocations run; NULL for one started
-- before versions existed, which runs the function's newest code.
ALTER TABLE executions ADD COLUMN function_version INTEGER;
-- The versions executions still in the store run or ran, which retention keeps.
CREATE INDEX executions_by_function_version ON executions (function_name, function_version);
