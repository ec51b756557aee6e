// Suite 1, step: a handler for each case, written from the case's description.
//
// Each case_S_N is the handler of requirement S-N (served as the function of that name).
import {
  JitterStrategy,
  StepSemantics,
  createRetryStrategy,
  retryPresets,
  withDurableExecution,
} from "@aws/durable-execution-sdk-js";

const NO_RETRY = { retryStrategy: retryPresets.noRetry };

// Retries after exactly one second, up to maxAttempts attempts in all.
const retryEverySecond = (maxAttempts) =>
  createRetryStrategy({ maxAttempts, initialDelay: { seconds: 1 }, backoffRate: 1, jitter: JitterStrategy.NONE });

const greet = (name) => async () => `Hello, ${name}!`;

export const case_1_1 = withDurableExecution(async (event, context) => {
  return context.step(greet(event));
});

export const case_1_2 = withDurableExecution(async (event, context) => {
  return context.step("custom_step_name", greet(event));
});

export const case_1_3 = withDurableExecution(async (event, context) => {
  const first = await context.step("step_one", async () => "first");
  return context.step("step_two", async () => `${first}_second`);
});

const buildResponse = (event) => async () => ({
  user: { name: event.name, tags: [...event.tags] },
  count: event.tags.length,
});

export const case_1_4 = withDurableExecution(async (event, context) => {
  return context.step(buildResponse(event));
});

export const case_1_5 = withDurableExecution(async (event, context) => {
  return context.step("do_nothing", async () => null);
});

// Writes every string in the value in upper case; reads JSON back as is.
const uppercaseSerdes = {
  serialize: async (value) => {
    const upper = (item) => {
      if (typeof item === "string") return item.toUpperCase();
      if (Array.isArray(item)) return item.map(upper);
      if (item !== null && typeof item === "object") {
        return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, upper(v)]));
      }
      return item;
    };
    return value === undefined ? undefined : JSON.stringify(upper(value));
  },
  deserialize: async (data) => (data === undefined ? undefined : JSON.parse(data)),
};

export const case_1_6 = withDurableExecution(async (event, context) => {
  return context.step("return_input", async () => event, { serdes: uppercaseSerdes });
});

export const case_1_7 = withDurableExecution(async (event, context) => {
  return context.step("greet", async (stepContext) => {
    stepContext.logger.info(`Greeting step started for: ${event}`);
    const greeting = `Hello, ${event}!`;
    stepContext.logger.info(`Greeting step completed with: ${greeting}`);
    return greeting;
  });
});

export const case_1_8 = withDurableExecution(async (event, context) => {
  const result = await context.step("compute", async () => "computed");
  await context.wait({ seconds: 2 });
  return result;
});

export const case_1_9 = withDurableExecution(async (event, context) => {
  const result = await context.step("compute", async (stepContext) => {
    stepContext.logger.info("step executed");
    return "cached_value";
  });
  await context.wait({ seconds: 1 });
  return result;
});

export const case_1_10 = withDurableExecution(async (event, context) => {
  try {
    await context.step(
      "fail",
      async (stepContext) => {
        stepContext.logger.info("step executed");
        throw new Error("permanent failure");
      },
      NO_RETRY,
    );
  } catch {
    // The case catches the step's error and carries on.
  }
  await context.wait({ seconds: 1 });
  return "caught";
});

export const case_1_11 = withDurableExecution(async (event, context) => {
  return context.step(
    "unreliable",
    async (stepContext) => {
      if (stepContext.attempt === 1) throw new Error("first attempt fails");
      return "Operation succeeded";
    },
    { retryStrategy: retryEverySecond(3) },
  );
});

export const case_1_12 = withDurableExecution(async (event, context) => {
  return context.step(
    "always_fail",
    async (stepContext) => {
      throw new Error(`attempt ${stepContext.attempt} failed`);
    },
    { retryStrategy: retryEverySecond(4) },
  );
});

export const case_1_13 = withDurableExecution(async (event, context) => {
  // No config: the SDK's default retry strategy.
  return context.step("unreliable", async (stepContext) => {
    if (stepContext.attempt <= 2) throw new Error(`attempt ${stepContext.attempt} fails`);
    return "succeeded on third attempt";
  });
});

export const case_1_14 = withDurableExecution(async (event, context) => {
  // The attempt number comes from the step context (the AWS example keeps it in DynamoDB).
  const retryStrategy = createRetryStrategy({
    maxAttempts: 5,
    initialDelay: { seconds: 2 },
    backoffRate: 3,
    jitter: JitterStrategy.NONE,
  });
  return context.step(
    "unreliable",
    async (stepContext) => {
      if (stepContext.attempt <= 2) throw new Error(`attempt ${stepContext.attempt} fails`);
      return "succeeded on third attempt";
    },
    { retryStrategy },
  );
});

class TransientError extends Error {
  name = "TransientError";
}

export const case_1_15 = withDurableExecution(async (event, context) => {
  const retryOnTransient = (error, attemptsMade) =>
    error instanceof TransientError && attemptsMade < 3
      ? { shouldRetry: true, delay: { seconds: 1 } }
      : { shouldRetry: false };
  return context.step(
    "flaky",
    async (stepContext) => {
      if (stepContext.attempt === 1) throw new TransientError("temporary glitch");
      return "recovered";
    },
    { retryStrategy: retryOnTransient },
  );
});

export const case_1_16 = withDurableExecution(async (event, context) => {
  const noRetryOnTransient = (error) =>
    error instanceof TransientError ? { shouldRetry: false } : { shouldRetry: true, delay: { seconds: 1 } };
  return context.step(
    "flaky",
    async () => {
      throw new TransientError("temporary glitch");
    },
    { retryStrategy: noRetryOnTransient },
  );
});

// Ends the process at once, as a Lambda runtime crash does.
const crash = () => process.exit(1);

export const case_1_17 = withDurableExecution(async (event, context) => {
  return context.step(
    "at_most_once_flaky_step",
    async (stepContext) => {
      stepContext.logger.info(`at most once step running for ${event}`);
      crash();
      return "unreachable";
    },
    { retryStrategy: retryPresets.noRetry, semantics: StepSemantics.AtMostOncePerRetry },
  );
});

export const case_1_18 = withDurableExecution(async (event, context) => {
  return context.step(
    "at_most_once_flaky_step",
    async (stepContext) => {
      stepContext.logger.info(`at most once step running for ${event}`);
      if (stepContext.attempt === 1) crash();
      return "succeeded on second attempt";
    },
    { retryStrategy: retryEverySecond(3), semantics: StepSemantics.AtMostOncePerRetry },
  );
});

export const case_1_19 = withDurableExecution(async (event, context) => {
  return context.step(
    "failing",
    async () => {
      throw new Error("step failed");
    },
    NO_RETRY,
  );
});

export const case_1_20 = withDurableExecution(async (event, context) => {
  let value;
  try {
    value = await context.step(
      "failing",
      async () => {
        throw new Error("step failed");
      },
      NO_RETRY,
    );
  } catch {
    value = "fallback";
  }
  return context.step("use_value", async () => `${value}_result`);
});
