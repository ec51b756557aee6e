// Suite 4, callback: a handler for each case, written from the case's description.
//
// The harness completes the callbacks as each case's CallbackActions say, matching them by name.
import { CallbackError, withDurableExecution } from "@aws/durable-execution-sdk-js";

export const case_4_1 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event);
  return result;
});

export const case_4_2 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback("approval");
  return result;
});

export const case_4_3 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event, { timeout: { seconds: 5 } });
  return result;
});

export const case_4_4 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event, { heartbeatTimeout: { seconds: 5 } });
  return result;
});

export const case_4_5 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event, { heartbeatTimeout: { seconds: 10 } });
  return result;
});

export const case_4_6 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event);
  return result;
});

export const case_4_7 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event);
  await context.step("prepare", async () => "prepared");
  return result;
});

export const case_4_8 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event, { timeout: { seconds: 5 } });
  await context.step("prepare", async () => "prepared");
  return result;
});

export const case_4_9 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event);
  await context.wait({ seconds: 5 });
  return result;
});

export const case_4_10 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event);
  await context.wait({ seconds: 5 });
  return result;
});

export const case_4_11 = withDurableExecution(async (event, context) => {
  const [result] = await context.createCallback(event, { timeout: { seconds: 3 } });
  await context.wait({ seconds: 6 });
  return result;
});

export const case_4_12 = withDurableExecution(async (event, context) => {
  const [callback] = await context.createCallback(event);
  const result = await callback;
  await context.wait({ seconds: 2 });
  return result;
});

export const case_4_13 = withDurableExecution(async (event, context) => {
  const [callback] = await context.createCallback(event);
  let message;
  try {
    message = await callback;
  } catch (error) {
    if (!(error instanceof CallbackError)) throw error;
    message = `callback failed: ${error.message}`;
  }
  await context.wait({ seconds: 2 });
  return message;
});

export const case_4_14 = withDurableExecution(async (event, context) => {
  const [callback] = await context.createCallback(event, { timeout: { seconds: 3 } });
  let message;
  try {
    message = await callback;
  } catch (error) {
    if (!(error instanceof CallbackError)) throw error;
    message = `callback timed out: ${error.message}`;
  }
  await context.wait({ seconds: 2 });
  return message;
});

// Reads the JSON payload into a message whose ISO timestamp becomes epoch seconds.
const receivedMessage = {
  deserialize: async (data) => {
    const raw = JSON.parse(data);
    return { id: raw.id, message: raw.message, timestamp: Math.floor(new Date(raw.timestamp).getTime() / 1000) };
  },
};

export const case_4_15 = withDurableExecution(async (event, context) => {
  const [callback] = await context.createCallback(event, { serdes: receivedMessage });
  return { received: await callback };
});

const number = { deserialize: async (data) => Number(JSON.parse(data)) };

export const case_4_16 = withDurableExecution(async (event, context) => {
  const [callback] = await context.createCallback(event, { serdes: number });
  const count = await callback;
  return { count, doubled: count * 2 };
});

export const case_4_17 = withDurableExecution(async (event, context) => {
  const [a] = await context.createCallback(event[0]);
  const first = await a;
  const [b] = await context.createCallback(event[1]);
  const second = await b;
  return [first, second];
});

export const case_4_18 = withDurableExecution(async (event, context) => {
  const [a] = await context.createCallback(event[0]);
  const [b] = await context.createCallback(event[1]);
  const first = await a;
  const second = await b;
  return [first, second];
});

export const case_4_19 = withDurableExecution(async (event, context) => {
  const [a] = await context.createCallback(event[0]);
  const [b] = await context.createCallback(event[1]);
  const second = await b;
  const first = await a;
  return [first, second];
});
