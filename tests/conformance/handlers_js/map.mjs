// Suite 9, map: a handler for each case, written from the case's description.
//
// A map function receives the iteration's context, the item, its index and all the items.

import { NestingType, withDurableExecution } from "@aws/durable-execution-sdk-js";

/** One item at a time, in index order (a deterministic history). */
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

/** Fails the iterations whose item is in `bad`; the others return `value`. */
function failOn(bad, value = "ok") {
  return async (ctx, item, index) => {
    if (bad.includes(item)) {
      throw new Error(`item ${index} (${item}) failed`);
    }
    return value;
  };
}

async function upper(ctx, item) {
  return item.toUpperCase();
}

export const case_9_1 = withDurableExecution(async (event, context) => {
  const greet = async (ctx, item, index) => await ctx.step(`greet-${index}`, async () => `Hello, ${item}!`);
  const result = await context.map("map", event, greet, sequential());
  return result.getResults();
});

export const case_9_2 = withDurableExecution(async (event, context) => {
  const result = await context.map(event, async (ctx, item) => item * 2, sequential());
  return result.getResults();
});

export const case_9_3 = withDurableExecution(async (event, context) => {
  const result = await context.map("indexed", event, async (ctx, item, index) => item + index, sequential());
  return result.getResults();
});

export const case_9_4 = withDurableExecution(async (event, context) => {
  const result = await context.map("empty", event ?? [], upper);
  return result.getResults();
});

export const case_9_5 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 0 } });
  const result = await context.map("failfast", ["i0", "i1", "i2"], failOn(["i1"]), config);
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});

export const case_9_6 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 0 } });
  const result = await context.map("throwing", ["i0", "i1"], failOn(["i0"]), config);
  result.throwIfError();
  return result.getResults();
});

export const case_9_7 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { minSuccessful: 2 } });
  const result = await context.map("min-successful", ["i0", "i1", "i2", "i3"], failOn([]), config);
  return projection(result, "completionReason", "successCount", "totalCount");
});

export const case_9_8 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 1 } });
  const result = await context.map("tolerated", ["i0", "i1", "i2"], failOn(["i1"]), config);
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});

export const case_9_9 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 1 } });
  const result = await context.map("tolerated-exceeded", ["i0", "i1", "i2"], failOn(["i0", "i1"]), config);
  return projection(result, "completionReason", "successCount", "failureCount", "totalCount");
});

export const case_9_10 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailurePercentage: 25 } });
  const result = await context.map("tolerated-pct", ["i0", "i1", "i2", "i3"], failOn(["i0", "i1"]), config);
  return projection(result, "completionReason", "successCount", "failureCount", "totalCount");
});

export const case_9_11 = withDurableExecution(async (event, context) => {
  const result = await context.map("concurrent", ["r0", "r1", "r2"], async (ctx, item) => item, { maxConcurrency: 2 });
  return result.getResults();
});

export const case_9_12 = withDurableExecution(async (event, context) => {
  const inStep = async (ctx, item, index) => await ctx.step(`item-${index}`, async () => item);
  const result = await context.map("flat", ["fa", "fb"], inStep, sequential({ nesting: NestingType.FLAT }));
  return result.getResults();
});

export const case_9_13 = withDurableExecution(async (event, context) => {
  const config = sequential({ itemNamer: (item) => `item-${item}` });
  const result = await context.map("named-items", event, async (ctx, item) => item * 10, config);
  return result.getResults();
});

/** Writes an item's result as `wrapped:<value>` and reads the value back. */
const wrappedText = {
  serialize: async (value) => `wrapped:${value}`,
  deserialize: async (data) => data.replace(/^wrapped:/, ""),
};

export const case_9_14 = withDurableExecution(async (event, context) => {
  const result = await context.map("serdes", ["x", "y"], upper, sequential({ itemSerdes: wrappedText }));
  return result.getResults();
});

export const case_9_15 = withDurableExecution(async (event, context) => {
  const iteration = async (ctx, item, index) => {
    if (index === 1) {
      await ctx.wait({ seconds: 1 });
    }
    return await ctx.step(`produce-${index}`, async () => item);
  };
  const result = await context.map("suspend", ["r0", "r1"], iteration, sequential());
  return result.getResults();
});

export const case_9_16 = withDurableExecution(async (event, context) => {
  const large = async (ctx, item, index) => String(index).repeat(70 * 1024);
  const result = await context.map("large", [0, 1, 2, 3], large, sequential());
  return projection(result, "successCount", "totalCount");
});

export const case_9_17 = withDurableExecution(async (event, context) => {
  const result = await context.map("then-wait", ["a", "b"], upper, sequential());
  await context.wait({ seconds: 1 });
  return result.getResults();
});

export const case_9_18 = withDurableExecution(async (event, context) => {
  const config = sequential({ completionConfig: { toleratedFailureCount: 1 } });
  const result = await context.map("fail-then-wait", ["ok", "fail"], failOn(["fail"]), config);
  await context.wait({ seconds: 1 });
  return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount");
});

/**
 * Writes the whole map result as `OPSERDE:` and its comma-joined results, and reads it back as
 * the batch result's data (the SDK restores the BatchResult methods on it).
 */
const operationSerdes = {
  serialize: async (result) => "OPSERDE:" + result.getResults().join(","),
  deserialize: async (data) => {
    const body = data.replace(/^OPSERDE:/, "");
    const results = body ? body.split(",") : [];
    return {
      all: results.map((result, index) => ({ result, index, status: "SUCCEEDED" })),
      completionReason: "ALL_COMPLETED",
    };
  },
};

export const case_9_19 = withDurableExecution(async (event, context) => {
  const result = await context.map("op-serde", ["x", "y"], upper, sequential({ serdes: operationSerdes }));
  return result.getResults();
});

export const case_9_20 = withDurableExecution(async (event, context) => {
  const result = await context.map("op-serde-replay", ["x", "y"], upper, sequential({ serdes: operationSerdes }));
  await context.wait({ seconds: 1 });
  return result.getResults();
});
