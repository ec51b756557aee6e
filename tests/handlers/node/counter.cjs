// A CommonJS handler (module.exports), as many existing Lambda functions are written.
const { withDurableExecution } = require("@aws/durable-execution-sdk-js");

exports.handler = withDurableExecution(async (event, context) => {
  const doubled = await context.step("double", async () => event.n * 2);
  return { doubled, format: "commonjs" };
});
