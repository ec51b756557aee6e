// Steps and a wait, as an ES module.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";

export const handler = withDurableExecution(async (event, context) => {
  const first = await context.step("first", async () => {
    console.log("running first");
    return (event.n ?? 1) + 1;
  });
  await context.wait({ seconds: event.wait ?? 1 });
  const second = await context.step("second", async () => first * 10);
  context.logger.info("done", second);
  return { first, second };
});
