// Suite 7, wait_for_callback: a handler for each case, written from the case's description.
//
// Each submitter receives the generated callback id and does nothing durable (the harness plays
// the external system and completes the callback as the case's CallbackActions say).

import {
  CallbackExternalError,
  CallbackTimeoutError,
  JitterStrategy,
  createRetryStrategy,
  withDurableExecution,
} from "@aws/durable-execution-sdk-js";

/** Hands the callback id to the external system (which the conformance harness plays). */
async function register(callbackId, context) {
  context.logger.info(`waiting for callback ${callbackId}`);
}

export const case_7_1 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback(event, register);
});

export const case_7_2 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback("approval", register);
});

export const case_7_3 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback(async () => {});
});

export const case_7_4 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback(event, register);
});

export const case_7_5 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback(event, register, { timeout: { seconds: 3 } });
});

export const case_7_6 = withDurableExecution(async (event, context) => {
  try {
    return await context.waitForCallback(event, register);
  } catch (error) {
    if (error instanceof CallbackExternalError) {
      return "recovered";
    }
    throw error;
  }
});

export const case_7_7 = withDurableExecution(async (event, context) => {
  const retryStrategy = createRetryStrategy({
    maxAttempts: 2,
    initialDelay: { seconds: 1 },
    backoffRate: 1,
    jitter: JitterStrategy.NONE,
  });
  return await context.waitForCallback(
    event,
    async () => {
      throw new Error("the external system refused the request");
    },
    { retryStrategy },
  );
});

export const case_7_8 = withDurableExecution(async (event, context) => {
  return await context.runInChildContext("wrapper", async (child) => {
    return await child.waitForCallback(event, register);
  });
});

export const case_7_9 = withDurableExecution(async (event, context) => {
  await context.waitForCallback("first", register);
  return await context.waitForCallback("second", register);
});

export const case_7_10 = withDurableExecution(async (event, context) => {
  await context.wait({ seconds: 1 });
  await context.step("prepare", async () => ({ prepared: true }));
  return await context.waitForCallback(event, register);
});

// The default callback deserializer hands back the raw payload string; this one parses JSON.
const json = { deserialize: async (data) => (data === undefined ? undefined : JSON.parse(data)) };

export const case_7_11 = withDurableExecution(async (event, context) => {
  const result = await context.waitForCallback(event, register, { serdes: json });
  return result.status;
});

export const case_7_12 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback(event, register, { heartbeatTimeout: { seconds: 5 } });
});

export const case_7_13 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback(event, register, { heartbeatTimeout: { seconds: 10 } });
});

export const case_7_14 = withDurableExecution(async (event, context) => {
  try {
    return await context.waitForCallback(event, register, { timeout: { seconds: 3 } });
  } catch (error) {
    if (error instanceof CallbackTimeoutError) {
      return "timed-out-handled";
    }
    throw error;
  }
});

export const case_7_15 = withDurableExecution(async (event, context) => {
  return await context.waitForCallback(event, register);
});
