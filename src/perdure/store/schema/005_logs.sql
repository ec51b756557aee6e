-- Log lines: what each invocation of an execution wrote to stdout, stderr and Python logging,
-- in the order it wrote them (seq is global and increasing). They go with their execution.
CREATE TABLE logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    invocation INTEGER NOT NULL,
    stream TEXT NOT NULL,
    time REAL NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX logs_by_execution ON logs (execution_id, seq);
