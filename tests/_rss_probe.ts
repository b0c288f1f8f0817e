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
import { bareHelper } from "./_process.ts";

const [mode = "handles", count = "1000"] = Deno.args;
const N = Number(count);
const WIDTH = 25;

/** A bare helper, pinged and let go. */
async function bare(): Promise<void> {
  await (await bareHelper())[Symbol.asyncDispose]();
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
