-- Schedules (issue 16): each function's schedules as its template or decorator declares them,
-- and how far each has fired. Every server on the database fires from these rows: a tick's
-- execution is named after the tick, so that it starts once however many fire it.
-- ``next_tick`` is the first tick not yet handled and ``next_due`` when it fires (the tick plus
-- the flexible window's offset), NULL while nothing is to fire (paused, disabled or ended).
-- ``paused_time`` is set while an operator has paused it (`perdure schedules pause`).
CREATE TABLE schedules (
    function_name TEXT NOT NULL,
    name TEXT NOT NULL,
    expression TEXT NOT NULL,
    timezone TEXT NOT NULL,
    input TEXT,
    enabled INTEGER NOT NULL,
    start_time REAL,
    end_time REAL,
    window_minutes INTEGER NOT NULL,
    catch_up TEXT NOT NULL,
    anchor REAL NOT NULL,
    paused_time REAL,
    last_tick REAL,
    next_tick REAL,
    next_due REAL,
    updated_time REAL NOT NULL,
    PRIMARY KEY (function_name, name)
);
-- The schedules due first, for the scheduler of every server.
CREATE INDEX schedules_due ON schedules (next_due) WHERE next_due IS NOT NULL;
