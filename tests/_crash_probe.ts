/**
 * Opens a mount namespace whose Worker then dies of an uncaught error, and
 * prints as JSON how the calls after it failed. A test runs it in a process
 * of its own, because Deno prints a Worker's uncaught error to stderr: that
 * output goes to the test, not into the suite's.
 *
 *     deno run --allow-ffi --allow-read tests/_crash_probe.ts NSPATH SOURCE
 *
 * @module
 */

import { openTestNamespace } from "./_test_namespace.ts";
import { MS_BIND } from "../mod.ts";

const [nsPath, source] = Deno.args;
const ns = await openTestNamespace(nsPath);
const outcome = (promise: Promise<unknown>) =>
  promise.then(() => "ok", (error: Error) => `${error.name}: ${error.message}`);
// The Worker answers, then dies before it reads the next request.
await ns.send("crash", {});
const pending = await outcome(
  ns.mountFd({ source, destination: "/d", flags: MS_BIND }, { sourceIn: "namespace" }),
);
const closed = ns.closed;
const later = await outcome(ns.mountInto({ source, destination: "/d", flags: MS_BIND }, source));
await ns.close();
console.log(JSON.stringify({ pending, closed, later }));
