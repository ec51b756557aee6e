// Suite 10, plugin: a handler for each case, written from the case's description.
//
// The instrumentation plugins (the SDK's own plugin API: an object with lifecycle hooks, passed
// to withDurableExecution) write one JSON object per hook to plain stdout, each carrying the
// durableExecutionArn the invocation-start hook received, as the cases ask. They write with
// process.stdout.write, not console.log: the cases read raw top-level JSON lines, and Lambda's
// Node runtime wraps console output in a line of its own (time, request ID, level).

import {
  JitterStrategy,
  createRetryStrategy,
  retryPresets,
  withDurableExecution,
} from "@aws/durable-execution-sdk-js";

const INVOCATION_HOOKS = ["invocation-start", "invocation-end"];
const ALL_HOOKS = [
  "invocation-start",
  "invocation-end",
  "operation-start",
  "operation-end",
  "attempt-start",
  "attempt-end",
];

/**
 * Writes a JSON record for the hooks its case asks for; `raises` makes every hook throw after
 * writing (the SDK must swallow it).
 *
 * One plugin serves one case's function, whose executions the conformance run does not overlap,
 * so the ARN kept from the last invocation-start is the current execution's.
 */
class RecordingPlugin {
  constructor(name, hooks, { raises = false } = {}) {
    this.name = name;
    this.hooks = new Set(hooks);
    this.raises = raises;
    this.arn = undefined;
  }

  emit(hook, fields = {}) {
    if (!this.hooks.has(hook)) {
      return;
    }
    // One write per record, so the lines of hooks dispatched together never interleave.
    process.stdout.write(JSON.stringify({ plugin: this.name, hook, ...fields, durableExecutionArn: this.arn }) + "\n");
    if (this.raises) {
      throw new Error(`${this.name} fails in ${hook} on purpose`);
    }
  }

  async onInvocationStart(info) {
    this.arn = info.executionArn;
    this.emit("invocation-start", { first: info.isFirstInvocation });
  }

  async onInvocationEnd(info) {
    this.emit("invocation-end", { status: info.status });
  }

  async onOperationStart(info) {
    if (info.type === "STEP") {
      this.emit("operation-start", { op: info.id });
    }
  }

  async onOperationEnd(info) {
    if (info.type === "STEP") {
      this.emit("operation-end", { op: info.id, status: info.status });
    }
  }

  async onOperationAttemptStart(info) {
    if (info.type === "STEP") {
      this.emit("attempt-start", { n: info.attempt, op: info.id });
    }
  }

  async onOperationAttemptEnd(info) {
    if (info.type === "STEP") {
      this.emit("attempt-end", { n: info.attempt, outcome: info.outcome, op: info.id });
    }
  }
}

function greet(event) {
  return async (stepContext) => {
    stepContext.logger.info(`Greeting step running for: ${event}`);
    return `Hello, ${event}!`;
  };
}

export const case_10_1 = withDurableExecution(
  async (event, context) => await context.step("greet", greet(event)),
  { plugins: [new RecordingPlugin("CONFPLUGIN", INVOCATION_HOOKS)] },
);

export const case_10_2 = withDurableExecution(
  async (event, context) => await context.step("greet", greet(event)),
  { plugins: [new RecordingPlugin("CONFPLUGIN", ["operation-start", "operation-end"])] },
);

export const case_10_3 = withDurableExecution(
  async (event, context) => {
    const unreliable = async (stepContext) => {
      if (stepContext.attempt === 1) {
        throw new Error("first attempt fails");
      }
      return "Operation succeeded";
    };
    const retryStrategy = createRetryStrategy({
      maxAttempts: 3,
      initialDelay: { seconds: 1 },
      backoffRate: 1,
      jitter: JitterStrategy.NONE,
    });
    return await context.step("unreliable", unreliable, { retryStrategy });
  },
  { plugins: [new RecordingPlugin("CONFPLUGIN", ["attempt-start", "attempt-end"])] },
);

export const case_10_4 = withDurableExecution(
  async (event, context) => await context.step("greet", greet(event)),
  { plugins: [new RecordingPlugin("CONFPLUGIN-FAULTY", ALL_HOOKS, { raises: true })] },
);

export const case_10_5 = withDurableExecution(
  async (event, context) => await context.step("greet", greet(event)),
  {
    plugins: [
      new RecordingPlugin("CONFPLUGIN-A", INVOCATION_HOOKS),
      new RecordingPlugin("CONFPLUGIN-B", INVOCATION_HOOKS),
    ],
  },
);

export const case_10_6 = withDurableExecution(
  async (event, context) => {
    await context.wait({ seconds: 2 });
    return "waited";
  },
  { plugins: [new RecordingPlugin("CONFPLUGIN", INVOCATION_HOOKS)] },
);

export const case_10_7 = withDurableExecution(
  async (event, context) => {
    const failing = async () => {
      throw new Error("step failed");
    };
    return await context.step("failing", failing, { retryStrategy: retryPresets.noRetry });
  },
  { plugins: [new RecordingPlugin("CONFPLUGIN", INVOCATION_HOOKS)] },
);
