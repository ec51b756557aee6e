// The function run.py invokes before the cases, so the server's worker processes (and their
// Node children, the SDK imported) are running.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";

export const warm_up = withDurableExecution(async () => "warm");
