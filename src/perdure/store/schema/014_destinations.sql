-- Where a function's ended executions go (issue 16): Lambda's event invoke configuration of a
-- function and qualifier ($LATEST when set without one). ``config`` is its JSON
-- (``EventInvokeConfig.to_json``: on_success, on_failure and Lambda's two retry settings);
-- ``source`` says who set it: 'api' (PutFunctionEventInvokeConfig) or 'served' (a template's
-- EventInvokeConfig or a decorator's on_failure, written as a server serving that code starts).
CREATE TABLE event_invoke_configs (
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    source TEXT NOT NULL,
    last_modified REAL NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);
