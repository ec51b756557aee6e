-- One-time upgrades of stored data that need more than SQL (the server secret, say), by name
-- and when they were done: a start finds its upgrade done in one lookup instead of redoing
-- it (perdure.service.snapshot_upgrade signs v1 snapshots for the checkpoint they are in).
CREATE TABLE upgrades (
    name TEXT PRIMARY KEY,
    done_time REAL NOT NULL
);
