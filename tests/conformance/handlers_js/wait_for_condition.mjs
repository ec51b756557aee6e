// Suite 6, wait_for_condition: a handler for each case, written from the case's description.

import { JitterStrategy, createWaitStrategy, withDurableExecution } from "@aws/durable-execution-sdk-js";

/** A fixed-delay wait strategy: no jitter, no backoff. */
function every(seconds, shouldContinuePolling, maxAttempts = 60) {
  return createWaitStrategy({
    shouldContinuePolling,
    maxAttempts,
    initialDelay: { seconds },
    maxDelay: { seconds },
    backoffRate: 1,
    jitter: JitterStrategy.NONE,
  });
}

// The poll delay where a case names none. Not 1 s: when the checkpoint that schedules the next
// poll is answered after the delay has already passed (a loaded machine), the JS SDK polls again
// within the same invocation instead of suspending, which joins two polls in one invocation where
// the case expects an invocation each.
const POLL = 2;

async function increment(state) {
  return state + 1;
}

export const case_6_1 = withDurableExecution(async (event, context) => {
  const threshold = Number(event);
  return await context.waitForCondition(increment, {
    waitStrategy: every(POLL, (state) => state < threshold),
    initialState: 0,
  });
});

export const case_6_2 = withDurableExecution(async (event, context) => {
  return await context.waitForCondition(async (state) => state, {
    waitStrategy: every(POLL, (state) => state < 5),
    initialState: 5,
  });
});

export const case_6_3 = withDurableExecution(async (event, context) => {
  return await context.waitForCondition("poll-status", increment, {
    waitStrategy: every(POLL, (state) => state < 2),
    initialState: 0,
  });
});

export const case_6_4 = withDurableExecution(async (event, context) => {
  const threshold = Number(event);
  return await context.waitForCondition(increment, {
    waitStrategy: every(POLL, (state) => state < threshold),
    initialState: 5,
  });
});

export const case_6_5 = withDurableExecution(async (event, context) => {
  const threshold = Number(event);
  return await context.waitForCondition(increment, {
    waitStrategy: every(2, (state) => state < threshold),
    initialState: 0,
  });
});

// The strategy throws once its attempts are used up, which fails the operation.
export const case_6_6 = withDurableExecution(async (event, context) => {
  return await context.waitForCondition(increment, {
    waitStrategy: every(POLL, () => true, 3),
    initialState: Number(event ?? 0),
  });
});

async function failingCheck(state, checkContext) {
  throw new Error(`the status service is down (attempt ${checkContext.attempt})`);
}

export const case_6_7 = withDurableExecution(async (event, context) => {
  return await context.waitForCondition(failingCheck, {
    waitStrategy: every(POLL, () => true),
    initialState: 0,
  });
});

export const case_6_8 = withDurableExecution(async (event, context) => {
  try {
    return await context.waitForCondition(failingCheck, {
      waitStrategy: every(POLL, () => true),
      initialState: 0,
    });
  } catch {
    return "recovered";
  }
});

export const case_6_9 = withDurableExecution(async (event, context) => {
  const check = async (state) => {
    const attempts = state.attempts + 1;
    return { status: attempts >= 2 ? "DONE" : "PENDING", attempts };
  };
  return await context.waitForCondition(check, {
    waitStrategy: every(POLL, (state) => state.status === "PENDING"),
    initialState: { status: "PENDING", attempts: 0 },
  });
});

export const case_6_10 = withDurableExecution(async (event, context) => {
  return await context.waitForCondition(async () => null, {
    waitStrategy: () => ({ shouldContinue: false }),
    initialState: null,
  });
});

/** Checkpoints the state as base64 of its JSON (itself a JSON string), and decodes it back on resume. */
const base64Text = {
  serialize: async (value) => JSON.stringify(Buffer.from(JSON.stringify(value)).toString("base64")),
  deserialize: async (data) => JSON.parse(Buffer.from(JSON.parse(data), "base64").toString()),
};

export const case_6_11 = withDurableExecution(async (event, context) => {
  return await context.waitForCondition(async (state) => state + "x", {
    waitStrategy: every(POLL, (state) => state.length < 2),
    initialState: "",
    serdes: base64Text,
  });
});

export const case_6_12 = withDurableExecution(async (event, context) => {
  const threshold = Number(event);
  const final = await context.waitForCondition(increment, {
    waitStrategy: every(POLL, (state) => state < threshold),
    initialState: 0,
  });
  return await context.step("multiply", async () => final * 10);
});

export const case_6_13 = withDurableExecution(async (event, context) => {
  const first = await context.waitForCondition(increment, {
    waitStrategy: every(POLL, (state) => state < 2),
    initialState: 0,
  });
  return await context.waitForCondition(increment, {
    waitStrategy: every(POLL, (state) => state < 4),
    initialState: first,
  });
});
