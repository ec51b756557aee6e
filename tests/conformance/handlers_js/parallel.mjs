// Suite 8, parallel: a handler for each case, written from the case's description.

import { NestingType, withDurableExecution } from "@aws/durable-execution-sdk-js";

function returns(value) {
  return async () => value;
}

function stepReturning(value) {
  return async (ctx) => await ctx.step(`task-${value}`, async () => value);
}

function fails(message = "branch failed") {
  return async () => {
    throw new Error(message);
  };
}

/** One branch at a time, in index order (a deterministic history). */
function sequential(options = {}) {
  return { maxConcurrency: 1, ...options };
}

function projection(result, ...fields) {
  const values = {
    completionReason: result.completionReason,
    status: result.status,
    successCount: result.successCount,
    failureCount: result.failureCount,
    totalCount: result.totalCount,
  };
  return Object.fromEntries(fields.map((name) => [name, values[name]]));
}

export const case_8_1 = withDurableExecution(async (event, context) => {
  const result = await context.parallel("parallel", [stepReturning("task-1"), stepReturning("task-2")], sequential());
  return result.getResults();
});

export const case_8_2 = withDurableExecution(async (event, context) => {
  const result = await context.parallel([returns("alpha"), returns("beta")], sequential());
  return result.getResults();
});

export const case_8_3 = withDurableExecution(async (event, context) => {
  const branches = [
    { name: "first", func: returns("one") },
    { name: "second", func: returns("two") },
  ];
  const result = await context.parallel("named", branches, sequential());
  return result.getResults();
});

export const case_8_4 = withDurableExecution(async (event, context) => {
  const result = await context.parallel("hetero", [returns("hello"), returns(42), returns({ k: "v" })], sequential());
  return result.getResults();
});

export const case_8_5 = withDurableExecution(async (event, context) => {
  const result = await context.parallel("empty", []);
  return result.getResults();
});

export const case_8_6 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 0 } });
  const result = await context.parallel("failfast", [returns("ok"), fails(), returns("never")], config);
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});

export const case_8_7 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 0 } });
  const result = await context.parallel("throwing", [fails("branch 0 failed"), returns("never")], config);
  result.throwIfError();
  return result.getResults();
});

export const case_8_8 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { minSuccessful: 2 } });
  const branches = [returns("b0"), returns("b1"), returns("b2"), returns("b3")];
  const result = await context.parallel("min-successful", branches, config);
  return projection(result, "completionReason", "successCount", "totalCount");
});

export const case_8_9 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 1 } });
  const result = await context.parallel("tolerated", [returns("b0"), fails(), returns("b2")], config);
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});

export const case_8_10 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 1 } });
  const result = await context.parallel("tolerated-exceeded", [fails(), fails(), returns("never")], config);
  return projection(result, "completionReason", "successCount", "failureCount", "totalCount");
});

export const case_8_11 = withDurableExecution(async (event, context) => {
  const branches = [returns("r0"), returns("r1"), returns("r2")];
  const result = await context.parallel("concurrent", branches, { maxConcurrency: 2 });
  return result.getResults();
});

export const case_8_12 = withDurableExecution(async (event, context) => {
  const config = sequential({ nesting: NestingType.FLAT });
  const result = await context.parallel("flat", [stepReturning("fa"), stepReturning("fb")], config);
  return result.getResults();
});

export const case_8_13 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailurePercentage: 25 } });
  const branches = [fails(), fails(), returns("b2"), returns("b3")];
  const result = await context.parallel("tolerated-pct", branches, config);
  return projection(result, "completionReason", "successCount", "failureCount", "totalCount");
});

export const case_8_14 = withDurableExecution(async (event, context) => {
  const waitsThenReturns = async (ctx) => {
    await ctx.wait({ seconds: 2 });
    return "b1";
  };
  const branches = [async (ctx) => await ctx.step("b0", async () => "b0"), waitsThenReturns];
  const result = await context.parallel("replay", branches, sequential());
  return result.getResults();
});

/** Writes v as {"wrapped": v} and reads it back as v. */
const wrapped = {
  serialize: async (value) => JSON.stringify({ wrapped: value }),
  deserialize: async (data) => JSON.parse(data).wrapped,
};

export const case_8_15 = withDurableExecution(async (event, context) => {
  const result = await context.parallel("serde", [returns("x"), returns("y")], sequential({ itemSerdes: wrapped }));
  return result.getResults();
});

export const case_8_16 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 3 } });
  const result = await context.parallel("all-fail", [fails(), fails(), fails()], config);
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});

export const case_8_17 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { minSuccessful: 3 } });
  const result = await context.parallel("min-not-reached", [returns("b0"), fails(), returns("b2")], config);
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});

export const case_8_18 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { minSuccessful: 3, toleratedFailureCount: 1 } });
  const branches = [fails(), fails(), returns("b2"), returns("b3")];
  const result = await context.parallel("combined", branches, config);
  return projection(result, "completionReason", "successCount", "failureCount", "totalCount");
});

// maxConcurrency must be positive: the SDK ends the execution with a validation error.
export const case_8_19 = withDurableExecution(async (event, context) => {
  const result = await context.parallel("bad-concurrency", [returns("b0"), returns("b1")], { maxConcurrency: 0 });
  return result.getResults();
});

export const case_8_20 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 1 } });
  const result = await context.parallel("accessors", [returns("b0"), fails(), returns("b2")], config);
  return {
    hasFailure: result.hasFailure,
    successCount: result.succeeded().length,
    failureCount: result.failed().length,
    errorCount: result.getErrors().length,
  };
});

export const case_8_21 = withDurableExecution(async (event, context) => {
  const branchA = async (ctx) => {
    const inner = await ctx.parallel("inner", [stepReturning("i1"), stepReturning("i2")], sequential());
    return inner.getResults();
  };
  const result = await context.parallel("outer", [branchA], sequential());
  return result.getResults();
});

export const case_8_22 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailurePercentage: 25 } });
  const branches = [fails(), returns("b1"), returns("b2"), returns("b3")];
  const result = await context.parallel("pct-boundary", branches, config);
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});
