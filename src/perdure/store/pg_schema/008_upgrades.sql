-- One-time upgrades of stored data, as in SQLite (store/schema/008_upgrades.sql): by name and
-- when they were done, so that a start finds its upgrade done in one lookup instead of redoing it.
CREATE TABLE upgrades (
    name TEXT COLLATE "C" PRIMARY KEY,
    done_time DOUBLE PRECISION NOT NULL
);
