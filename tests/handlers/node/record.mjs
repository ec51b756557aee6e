// Appends a line to the file PERDURE_TEST_LOG names, for each step body a test handler runs: a
// test counts them to check that no completed step runs twice.
import { appendFileSync, existsSync, writeFileSync } from "node:fs";

export function record(line) {
  appendFileSync(process.env.PERDURE_TEST_LOG, `${line}\n`);
}

// True the first time it is asked for `name` in a test (a marker file beside the log), false after.
export function firstTime(name) {
  const marker = `${process.env.PERDURE_TEST_LOG}.${name}`;
  if (existsSync(marker)) return false;
  writeFileSync(marker, "");
  return true;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
