// The Node.js side of a Perdure worker process: runs Lambda handlers (such as those wrapped in
// withDurableExecution from @aws/durable-execution-sdk-js), many invocations at once.
//
// Requests come as JSON lines on stdin: {"id", "file", "handler", "event", "context"}. Answers go
// as JSON lines on the file descriptor PERDURE_ANSWERS_FD names, so that the handler's own writes to stdout and stderr
// never mix with them: {"ready": true} once, then per invocation any number of
// {"id", "log": [stream, line]} and one {"id", "result"} | {"id", "error"} | {"id", "loadError"}.
// A line written outside any invocation goes to stderr, the worker process's log.
import { AsyncLocalStorage } from "node:async_hooks";
import { createInterface } from "node:readline";
import { createWriteStream } from "node:fs";
import { pathToFileURL } from "node:url";

const answers = createWriteStream(null, { fd: Number(process.env.PERDURE_ANSWERS_FD) });
const send = (message) => answers.write(JSON.stringify(message) + "\n");

// Which invocation the running code belongs to follows its async calls (promises, timers,
// sockets), so the lines of invocations that run at once are kept apart.
const current = new AsyncLocalStorage();

// Every write to stdout and stderr passes here: console.*, the SDK's DefaultLogger (a Console
// of its own over process.stdout) and direct process.stdout.write alike.
function capture(stream, name) {
  const write = stream.write.bind(stream);
  stream.write = (chunk, encoding, callback) => {
    const invocation = current.getStore();
    if (invocation === undefined) {
      return name === "stdout" ? process.stderr.write(chunk, encoding, callback) : write(chunk, encoding, callback);
    }
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    const lines = (invocation.partial[name] + text).split("\n");
    invocation.partial[name] = lines.pop();
    for (const line of lines) send({ id: invocation.id, log: [name, line] });
    const done = typeof encoding === "function" ? encoding : callback;
    if (typeof done === "function") process.nextTick(done);
    return true;
  };
}
capture(process.stdout, "stdout");
capture(process.stderr, "stderr");

// A handler's module is imported once, by the first invocation that needs it; a module that
// failed to import is tried again by the next one, as Lambda initializes again.
const modules = new Map();

async function loadHandler(file, name) {
  let loading = modules.get(file);
  if (loading === undefined) {
    loading = import(pathToFileURL(file).href);
    modules.set(file, loading);
    loading.catch(() => modules.delete(file));
  }
  const module = await loading;
  // A CommonJS module's exports are its default export; most are also named exports.
  const handler = module[name] ?? module.default?.[name];
  if (typeof handler !== "function") {
    throw new Error(`${file} exports no function named ${JSON.stringify(name)}; check the Handler setting.`);
  }
  return handler;
}

function lambdaContext(context) {
  return {
    ...context,
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, context.deadlineMs - Date.now()),
  };
}

function errorObject(error) {
  if (error instanceof Error) {
    return {
      errorType: error.name || "Error",
      errorMessage: error.message || String(error),
      stackTrace: (error.stack || "").split("\n"),
    };
  }
  return { errorType: typeof error, errorMessage: String(error), stackTrace: [] };
}

function describeLoadFailure(file, error) {
  const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return `importing ${file} raised ${what}`;
}

async function run(request) {
  const invocation = { id: request.id, partial: { stdout: "", stderr: "" } };
  await current.run(invocation, async () => {
    let handler;
    try {
      handler = await loadHandler(request.file, request.handler);
    } catch (error) {
      send({ id: request.id, loadError: describeLoadFailure(request.file, error) });
      return;
    }
    const began = performance.now();
    const cpu = process.cpuUsage();
    const usage = () => {
      // The process's CPU time while the handler ran: invocations that run at once share the
      // event loop, so each is counted the time of all of them, never more than its own duration.
      const seconds = (performance.now() - began) / 1000;
      const spent = process.cpuUsage(cpu);
      return { seconds, cpuSeconds: Math.min(seconds, (spent.user + spent.system) / 1e6) };
    };
    try {
      const result = await handler(request.event, lambdaContext(request.context));
      flush(invocation);
      send({ id: request.id, result: result === undefined ? null : result, usage: usage() });
    } catch (error) {
      flush(invocation);
      send({ id: request.id, error: errorObject(error), usage: usage() });
    }
  });
}

function flush(invocation) {
  for (const name of ["stdout", "stderr"]) {
    if (invocation.partial[name]) send({ id: invocation.id, log: [name, invocation.partial[name]] });
    invocation.partial[name] = "";
  }
}

// An error no invocation catches is written to the worker's log; it does not end the process,
// which runs other invocations.
process.on("unhandledRejection", (reason) => {
  process.stderr.write(`[perdure] An unhandled promise rejection: ${reason instanceof Error ? reason.stack : reason}\n`);
});

const requests = createInterface({ input: process.stdin, crlfDelay: Infinity });
requests.on("line", (line) => {
  if (line) run(JSON.parse(line));
});
// The worker process closed the pipe (it is stopping, or died): nothing more will come.
requests.on("close", () => answers.end(() => process.exit(0)));
send({ ready: true });
