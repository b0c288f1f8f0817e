/**
 * A Deno process stuck while its userns helper waits: it prints the helper's
 * pid as soon as it is spawned, then blocks forever, before the handshake.
 * The test SIGKILLs it.
 */

import { Handles } from "../mod.ts";
import { simpleMapping } from "./_mappings.ts";
import { withSpawnHooks } from "./_process.ts";

const hooks = {
  after(pid: number): void {
    console.log(pid);
    // Block the thread, as a hung process would.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  },
};
using handles = new Handles();
await withSpawnHooks(hooks, () => handles.get(simpleMapping()));
