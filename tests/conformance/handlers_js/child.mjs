// Suite 3, child context: a handler for each case, written from the case's description.
import { existsSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { JitterStrategy, createRetryStrategy, retryPresets, withDurableExecution } from "@aws/durable-execution-sdk-js";

const NO_RETRY = { retryStrategy: retryPresets.noRetry };

const retryEverySecond = (maxAttempts) => ({
  retryStrategy: createRetryStrategy({
    maxAttempts,
    initialDelay: { seconds: 1 },
    backoffRate: 1,
    jitter: JitterStrategy.NONE,
  }),
});

// The context's logger with replay logging enabled: it also logs while the context replays.
const replayLogger = (context) => {
  context.configureLogger({ modeAware: false });
  return context.logger;
};

export const case_3_1 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("child", async (ctx) => ctx.step("return_input", async () => event));
});

export const case_3_2 = withDurableExecution(async (event, context) => {
  return context.runInChildContext(event.name, async (ctx) => ctx.step("return_value", async () => event.value));
});

export const case_3_3 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("sequential", async (ctx) => {
    const first = await ctx.step("first", async () => event);
    return ctx.step("second", async () => first);
  });
});

const failing = async () => {
  throw new Error("inner step failed");
};

export const case_3_4 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("failing_child", async (ctx) => ctx.step("failing", failing, NO_RETRY));
});

export const case_3_5 = withDurableExecution(async (event, context) => {
  try {
    await context.runInChildContext("failing_child", async (ctx) => ctx.step("failing", failing, NO_RETRY));
  } catch {
    // The case catches the child's error and recovers.
  }
  return context.step("recover", async () => event);
});

export const case_3_6 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("outer", async (outer) => {
    await outer.step("outer_step", async () => event);
    return outer.runInChildContext("inner", async (inner) => inner.step("inner_step", async () => event));
  });
});

export const case_3_7 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("retrying_child", async (ctx) =>
    ctx.step(
      "flaky",
      async (stepContext) => {
        if (stepContext.attempt === 1) throw new Error("first attempt fails");
        return event;
      },
      retryEverySecond(3),
    ),
  );
});

export const case_3_8 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("exhausted_child", async (ctx) =>
    ctx.step(
      "always_fail",
      async (stepContext) => {
        throw new Error(`attempt ${stepContext.attempt} failed`);
      },
      retryEverySecond(2),
    ),
  );
});

export const case_3_9 = withDurableExecution(async (event, context) => {
  const result = await context.runInChildContext("cached_child", async (ctx) =>
    ctx.step("return_input", async () => event),
  );
  await context.wait({ seconds: 1 });
  return result;
});

export const case_3_10 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("step_and_wait", async (ctx) => {
    const result = await ctx.step("return_input", async () => event);
    await ctx.wait({ seconds: 1 });
    return result;
  });
});

export const case_3_11 = withDurableExecution(async (event, context) => {
  const large = await context.runInChildContext("large_child", async (ctx) => {
    replayLogger(ctx).info(`large child context running for ${event}`);
    const small = await ctx.step("small", async () => event);
    // Over the 256 KB checkpoint limit: the child is checkpointed with ReplayChildren.
    return small.repeat(Math.floor((300 * 1024) / small.length) + 1);
  });
  await context.wait({ seconds: 1 });
  return { length: large.length, starts_with_input: large.startsWith(event) };
});

const crashMarker = (name, key) => join(tmpdir(), `perdure-conformance-js-${name}-${key}`);

export const case_3_12 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("interrupted_child", async (ctx) =>
    ctx.step("crashes_once", async () => {
      const marker = crashMarker("3-12", String(event));
      if (!existsSync(marker)) {
        writeFileSync(marker, "");
        // The START checkpoint is sent without waiting (at-least-once step): give it time to
        // be recorded, then end the process as a runtime crash does.
        await sleep(2000);
        process.exit(1);
      }
      unlinkSync(marker);
      return event;
    }),
  );
});

export const case_3_13 = withDurableExecution(async (event, context) => {
  await context.runInChildContext("waiting_child", async (ctx) => {
    await ctx.wait({ seconds: 1 });
    return event;
  });
  return context.step("after_child", async () => event);
});

// Writes the value as its upper-case text; reads the text back as is.
const uppercaseText = {
  serialize: async (value) => (value === undefined ? undefined : String(value).toUpperCase()),
  deserialize: async (data) => data,
};

export const case_3_14 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("uppercase_child", async (ctx) => ctx.step("return_input", async () => event), {
    serdes: uppercaseText,
  });
});

export const case_3_15 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("throwing_child", async () => {
    throw new Error("thrown directly in the child body");
  });
});

export const case_3_16 = withDurableExecution(async (event, context) => {
  return context.runInChildContext("null_child", async () => null);
});

export const case_3_17 = withDurableExecution(async (event, context) => {
  const result = await context.runInChildContext("logging_child", async (ctx) => {
    replayLogger(ctx).info(`logging child running for ${event}`);
    return event;
  });
  await context.wait({ seconds: 1 });
  return result;
});

export const case_3_18 = withDurableExecution(async (event, context) => {
  const result = await context.runInChildContext("mixed_child", async (ctx) => {
    const inner = await ctx.step("inner_step", async () => event);
    await ctx.wait({ seconds: 1 });
    return inner;
  });
  await context.step("outer_step", async () => event);
  await context.wait({ seconds: 1 });
  return result;
});
