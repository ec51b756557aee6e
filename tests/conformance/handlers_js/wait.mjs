// Suite 2, wait: a handler for each case, written from the case's description.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";

export const case_2_1 = withDurableExecution(async (event, context) => {
  await context.wait({ seconds: 2 });
  return "waited";
});

export const case_2_2 = withDurableExecution(async (event, context) => {
  await context.wait("custom_wait_name", { seconds: 2 });
  return "waited";
});

export const case_2_3 = withDurableExecution(async (event, context) => {
  await context.wait("wait-1", { seconds: 2 });
  await context.wait("wait-2", { seconds: 2 });
  return { completedWaits: 2 };
});

export const case_2_4 = withDurableExecution(async (event, context) => {
  await context.wait({ minutes: 1 });
  return "waited a minute";
});

export const case_2_5 = withDurableExecution(async (event, context) => {
  await context.wait({ hours: 1 });
  return "waited an hour";
});
