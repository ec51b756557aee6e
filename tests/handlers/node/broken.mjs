// A handler module that throws as it is imported, as one missing its configuration does.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";

if (!process.env.ORDERS_TABLE) {
  throw new Error("ORDERS_TABLE is not set: the orders handler cannot start without it");
}

export const handler = withDurableExecution(async () => "never");
