-- Schedules (issue 16): see store/schema/012_schedules.sql.
CREATE TABLE schedules (
    function_name TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    expression TEXT NOT NULL,
    timezone TEXT NOT NULL,
    input TEXT,
    enabled BOOLEAN NOT NULL,
    start_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION,
    window_minutes BIGINT NOT NULL,
    catch_up TEXT NOT NULL,
    anchor DOUBLE PRECISION NOT NULL,
    paused_time DOUBLE PRECISION,
    last_tick DOUBLE PRECISION,
    next_tick DOUBLE PRECISION,
    next_due DOUBLE PRECISION,
    updated_time DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function_name, name)
);
CREATE INDEX schedules_due ON schedules (next_due) WHERE next_due IS NOT NULL;
