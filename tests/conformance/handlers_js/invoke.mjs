// Suite 5, invoke (chained invoke): a handler for each case, written from the case's description.
//
// The functions the cases invoke are served from the same template: target_echo returns its
// input, target_greet greets it, target_size measures a large payload and target_fail fails.
import { InvokeError, withDurableExecution } from "@aws/durable-execution-sdk-js";

const ECHO = "target_echo";
const GREET = "target_greet";
const SIZE = "target_size";
const FAIL = "target_fail";

// Every call is named: the SDK tells invoke(name, function, input) from invoke(function, input)
// by the type of its second argument, so an unnamed call whose input is a string would take the
// input for the function to invoke.

export const target_echo = withDurableExecution(async (event) => event);

export const target_greet = withDurableExecution(async (event) => `Hello, ${event}!`);

export const target_size = withDurableExecution(async (event) => ({ length: event.data.length }));

export const target_fail = withDurableExecution(async () => {
  throw new Error("the invoked function failed");
});

export const case_5_1 = withDurableExecution(async (event, context) => {
  return context.invoke("echo", ECHO, event);
});

export const case_5_2 = withDurableExecution(async (event, context) => {
  return context.invoke(event.name, ECHO, event.payload);
});

export const case_5_3 = withDurableExecution(async (event, context) => {
  return context.invoke("echo", ECHO, event);
});

export const case_5_4 = withDurableExecution(async (event, context) => {
  return context.invoke("echo", ECHO, null);
});

export const case_5_5 = withDurableExecution(async (event, context) => {
  return context.invoke("fail", FAIL, event);
});

export const case_5_6 = withDurableExecution(async (event, context) => {
  try {
    return await context.invoke("fail", FAIL, event);
  } catch (error) {
    if (!(error instanceof InvokeError)) throw error;
    return "fallback";
  }
});

export const case_5_7 = withDurableExecution(async (event, context) => {
  // Near the 256 KB limit of an asynchronous invocation's payload.
  return context.invoke("size", SIZE, { data: "x".repeat(240 * 1024) });
});

export const case_5_8 = withDurableExecution(async (event, context) => {
  return context.invoke("echo", ECHO, event.payload, { tenantId: event.tenantId });
});

export const case_5_9 = withDurableExecution(async (event, context) => {
  const result = await context.invoke("echo", ECHO, "cached");
  await context.wait({ seconds: 1 });
  return result;
});

export const case_5_10 = withDurableExecution(async (event, context) => {
  let result;
  try {
    result = await context.invoke("fail", FAIL, event);
  } catch (error) {
    if (!(error instanceof InvokeError)) throw error;
    result = "caught";
  }
  await context.wait({ seconds: 1 });
  return result;
});

export const case_5_11 = withDurableExecution(async (event, context) => {
  const value = await context.step("prepare", async () => "from the step");
  return context.invoke("echo", ECHO, value);
});

export const case_5_12 = withDurableExecution(async (event, context) => {
  const result = await context.invoke("echo", ECHO, "from the invoke");
  return context.step("process", async () => `processed ${result}`);
});

export const case_5_13 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("child", async (ctx) => ctx.invoke("echo", ECHO, "inside the child"));
});

export const case_5_14 = withDurableExecution(async (event, context) => {
  const first = await context.invoke("echo", ECHO, "first");
  const second = await context.invoke("greet", GREET, first);
  return [first, second];
});

// Sends the payload with its strings in upper case.
const uppercasePayload = {
  serialize: async (value) => {
    const upper = (item) => (typeof item === "string" ? item.toUpperCase() : item);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      return JSON.stringify(Object.fromEntries(Object.entries(value).map(([k, v]) => [k, upper(v)])));
    }
    return JSON.stringify(upper(value ?? null));
  },
  deserialize: async (data) => (data === undefined ? undefined : JSON.parse(data)),
};

export const case_5_15 = withDurableExecution(async (event, context) => {
  return context.invoke("echo", ECHO, event, { payloadSerdes: uppercasePayload });
});

// Reads the result as its raw text in upper case (no JSON parsing).
const uppercaseResult = {
  serialize: async (value) => value,
  deserialize: async (data) => data?.toUpperCase(),
};

export const case_5_16 = withDurableExecution(async (event, context) => {
  return context.invoke("echo", ECHO, event, { resultSerdes: uppercaseResult });
});
