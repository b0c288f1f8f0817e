/**
 * A Deno process stuck while its userns helper waits: it prints the helper's
 * pid, then blocks forever before writing the maps. The test SIGKILLs it.
 */

import { setFaultHook } from "./_faults.ts";
import { Handles } from "../mod.ts";
import { childPids, simpleMapping } from "./_util.ts";

setFaultHook((op) => {
  if (op === "open") {
    console.log(childPids()[0]);
    // Block the thread, as a hung process would.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
  return undefined;
});
using handles = new Handles();
await handles.get(simpleMapping());
