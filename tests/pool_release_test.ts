/**
 * A released pool leaves nothing running: a helper stopped (`SIGSTOP`) after
 * its get, which would never exit at EOF, is killed by `release()`, and
 * `settled()` resolves at once, not after `helperTimeout`.
 */

import assert from "node:assert/strict";
import { Handles } from "../mod.ts";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids, newFds, openFds } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";
import { delay } from "../lib/async.ts";

/** Far longer than the test may take: a wait for it shows. */
const HELPER_TIMEOUT = 20_000;
/** What "at once" allows, on a loaded machine. */
const PROMPT_MS = 3000;

/** The state of a process, from /proc/PID/stat ("T" for stopped). */
function state(pid: number): string {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
}

for (
  const [when, wait] of [
    ["before its let-go timer fired", 0],
    ["while its end waits for it", 50],
  ] as const
) {
  Deno.test({
    ...skipUnless(`release() ends a pooled helper stopped after its get, ${when}`, NO_ID_RANGE),
    async fn(): Promise<void> {
      const before = openFds();
      const handles = new Handles({ prespawn: 1, helperTimeout: HELPER_TIMEOUT });
      await handles.ready();
      const [pid] = childPids();
      assert.ok(pid !== undefined, "the pooled helper runs");
      const fd = await handles.get(simpleMapping(0, 30000 + wait, 1));
      fd.close();
      // In the get's own turn: the helper is mapped, its stdin still open.
      Deno.kill(pid, "SIGSTOP");
      if (wait > 0) {
        // The signal lands, then the helper's end starts and waits for it.
        for (let i = 0; state(pid) !== "T"; i++) {
          assert.ok(i < 1000, "the helper stops");
          await delay(1);
        }
        await delay(wait);
        assert.equal(state(pid), "T", "still stopped");
      }
      const start = performance.now();
      handles.release();
      await handles.settled();
      const took = performance.now() - start;
      assert.ok(took < PROMPT_MS, `settled() took ${took.toFixed(0)} ms`);
      assert.deepEqual(childPids(), [], "no helper is left running");
      assert.deepEqual(newFds(before), []);
    },
  });
}
