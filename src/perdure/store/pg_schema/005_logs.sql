-- Log lines, as in SQLite (store/schema/005_logs.sql): what each invocation of an execution
-- wrote to stdout, stderr and Python logging, in order (seq is global and increasing).
CREATE TABLE logs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    invocation BIGINT NOT NULL,
    stream TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX logs_by_execution ON logs (execution_id, seq);
