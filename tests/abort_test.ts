/**
 * Aborts at every stage of Handles.get and mountFd: the aborted call rejects
 * with the signal's reason (or finishes, if it was done first), other waiters
 * on the same helper get the namespace, nothing hangs, nothing leaks.
 */

import assert from "node:assert/strict";
import { Handles, mountFd, MS_BIND, type OwnedFd } from "../mod.ts";
import { mountTest } from "./_mounts.ts";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids, newFds, openFds } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";

const DELAYS = [0, 0.2, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 20];

function abortAfter(ms: number, reason: unknown): AbortSignal {
  const controller = new AbortController();
  if (ms === 0) controller.abort(reason);
  else setTimeout(() => controller.abort(reason), ms);
  return controller.signal;
}

async function settleAll(ms: number): Promise<void> {
  // The abort timer fires at most ms after the start; let it run out.
  await new Promise((resolve) => setTimeout(resolve, ms + 1));
}

Deno.test({
  ...skipUnless(
    "Handles.get aborted at every stage: the reason, or the namespace; others unharmed",
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    const outcomes = new Set<string>();
    for (const ms of DELAYS) {
      const before = openFds();
      {
        using handles = new Handles();
        const reason = new Error(`abort at ${ms} ms`);
        const aborted = handles.get(simpleMapping(), { signal: abortAfter(ms, reason) });
        const other = handles.get(simpleMapping());
        const [a, b] = await Promise.allSettled([aborted, other]);
        if (a.status === "fulfilled") {
          outcomes.add("done");
          a.value.close();
        } else {
          outcomes.add("aborted");
          assert.equal(a.reason, reason);
        }
        assert.equal(b.status, "fulfilled", `the other waiter at ${ms} ms`);
        (b as PromiseFulfilledResult<OwnedFd>).value.close();
        await settleAll(ms);
      }
      assert.deepEqual(newFds(before), [], `fds left at ${ms} ms`);
      assert.deepEqual(childPids(), [], `processes left at ${ms} ms`);
    }
    assert.ok(outcomes.has("aborted"), "some aborts landed while the helper ran");
  },
});

Deno.test({
  ...skipUnless(
    "a lone Handles.get aborted at every stage reaps its helper before it rejects",
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    for (const ms of DELAYS) {
      const before = openFds();
      {
        using handles = new Handles();
        const reason = new Error(`abort at ${ms} ms`);
        try {
          (await handles.get(simpleMapping(), { signal: abortAfter(ms, reason) })).close();
        } catch (error) {
          assert.equal(error, reason);
          assert.deepEqual(childPids(), [], `the helper is reaped when get rejects (${ms} ms)`);
        }
        await settleAll(ms);
      }
      assert.deepEqual(newFds(before), [], `fds left at ${ms} ms`);
    }
  },
});

mountTest("mountFd aborted at every stage closes everything", async (fx) => {
  const src = fx.mkdir("src");
  for (const ms of DELAYS) {
    const before = openFds();
    const reason = new Error(`abort at ${ms} ms`);
    try {
      (await mountFd(
        { source: src, destination: "/d", flags: MS_BIND, idMapping: simpleMapping() },
        { signal: abortAfter(ms, reason) },
      )).close();
    } catch (error) {
      assert.equal(error, reason);
    }
    await settleAll(ms);
    assert.deepEqual(newFds(before), [], `fds left at ${ms} ms`);
    assert.deepEqual(childPids(), [], `processes left at ${ms} ms`);
  }
});
