-- Where a function's ended executions go, as in SQLite (store/schema/014_destinations.sql): the
-- event invoke configuration of a function and qualifier, its JSON, and who set it.
CREATE TABLE event_invoke_configs (
    function_name TEXT COLLATE "C" NOT NULL,
    qualifier TEXT COLLATE "C" NOT NULL,
    config TEXT NOT NULL,
    source TEXT NOT NULL,
    last_modified DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);
