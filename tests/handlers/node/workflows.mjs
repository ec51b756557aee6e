// Node test handlers: a step past its timeout, a worker killed in a step and while suspended,
// concurrent invocations' logs, and chained invokes to and from Python functions. Each test
// passes a key of its own (event.key), which prefixes the lines it records and names its markers.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";
import { firstTime, record, sleep } from "./record.mjs";

// Its middle step hangs past the function's Timeout the first time, and returns the next.
export const slowFirstTime = withDurableExecution(async (event, context) => {
  await context.step("before", async () => record(`${event.key} before`));
  await context.step("sleep", async () => {
    if (firstTime(`${event.key}-slow`)) await sleep(600_000);
    record(`${event.key} slept`);
  });
  return await context.step("after", async () => {
    record(`${event.key} after`);
    return "after";
  });
});

// Step "b" records its process id and, the first time, hangs (for the test to SIGKILL it); then
// the execution waits for a callback (and is SIGKILLed again while suspended).
export const killable = withDurableExecution(async (event, context) => {
  await context.step("a", async () => record(`${event.key} a`));
  await context.step("b", async () => {
    record(`${event.key} b-start ${process.pid}`);
    if (firstTime(`${event.key}-b`)) await sleep(600_000);
    record(`${event.key} b`);
  });
  const approval = await context.waitForCallback("approval", async (callbackId) => {
    record(`${event.key} callback ${process.pid} ${callbackId}`);
  });
  await context.step("c", async () => record(`${event.key} c`));
  return { approval };
});

// Writes `event.lines` lines tagged with `event.tag`, yielding between them, so that the lines
// of invocations that run at once interleave in time.
export const chatty = withDurableExecution(async (event, context) => {
  for (let i = 0; i < event.lines; i++) {
    console.log(`${event.tag} console ${i}`);
    await sleep(1);
    process.stderr.write(`${event.tag} stderr ${i}\n`);
    context.logger.info(`${event.tag} logger ${i}`);
    await sleep(1);
  }
  return await context.step("done", async () => event.tag);
});

// Invokes `event.target` with `event.payload` and returns what it answered.
export const caller = withDurableExecution(async (event, context) => {
  const got = await context.invoke("call", event.target, event.payload);
  return { got, runtime: `node ${process.versions.node.split(".")[0]}` };
});

export const echo = withDurableExecution(async (event) => ({ echoed: event, by: "node" }));

// Ten steps, for the benchmark.
export const tenSteps = withDurableExecution(async (event, context) => {
  let total = 0;
  for (let i = 0; i < 10; i++) total = await context.step(`step-${i}`, async () => total + i);
  return total;
});

// A step that takes `event.seconds`, recording its start and end.
export const napper = withDurableExecution(async (event, context) => {
  await context.step("nap", async () => {
    record(`${event.key} nap-started`);
    await sleep(event.seconds * 1000);
    record(`${event.key} nap-finished`);
  });
  return "rested";
});

// Holds `event.megabytes` of memory in a step, and returns how much it held.
export const hungry = withDurableExecution(async (event, context) => {
  return await context.step("eat", async () => {
    const held = [];
    for (let i = 0; i < event.megabytes; i++) held.push(new Array(128 * 1024).fill(i));
    return held.length;
  });
});
