/**
 * A probe for the at-scale test, run in a fresh process: how much RSS grows
 * while `N` user namespaces are made, either with a `Handles` that keeps them
 * all (`handles`), or with bare spawns of the same helper that keep nothing
 * (`bare`): Deno's own cost of spawning that many processes. Prints
 * `{ "grown": bytes }`.
 *
 * @module
 */

import { Handles, type Mapping } from "../mod.ts";

const [mode = "handles", count = "1000"] = Deno.args;
const N = Number(count);
const WIDTH = 25;
const PING = new Uint8Array([0x2e]);

/** A bare helper, read into small buffers as the library reads it. */
async function bare(): Promise<void> {
  const child = new Deno.Command("unshare", {
    args: ["--user", "--", "cat"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader({ mode: "byob" });
  await writer.write(PING);
  await reader.read(new Uint8Array(16));
  await writer.close();
  while (!(await reader.read(new Uint8Array(16))).done);
  await child.stderr.cancel();
  await child.status;
}

function mapping(i: number): Mapping {
  const range = [{ containerID: 0, hostID: 10000 + i, size: 1 }];
  return { uidMappings: range, gidMappings: range };
}

async function run(handles: Handles, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i += WIDTH) {
    const batch = Array.from({ length: Math.min(WIDTH, from + n - i) }, (_, k) => i + k);
    if (mode === "bare") await Promise.all(batch.map(bare));
    else for (const fd of await Promise.all(batch.map((k) => handles.get(mapping(k))))) fd.close();
  }
}

// Warm up the spawn path and the JIT, then measure.
{
  await using warm = new Handles();
  await run(warm, 40000, 100);
}
await using handles = new Handles();
const before = Deno.memoryUsage().rss;
await run(handles, 0, N);
console.log(JSON.stringify({ grown: Deno.memoryUsage().rss - before, size: handles.size }));
