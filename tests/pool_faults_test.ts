/**
 * Pooled helpers that fail: killed while idle or just before a get, a map
 * that fails or that the kernel refuses, aborts while one starts, helpers
 * stopped (SIGSTOP) while idle or starting, and one that keeps dying.
 */

import assert from "node:assert/strict";
import { errnoValue } from "../ffi/errno.ts";
import { setFaultHook } from "./_faults.ts";
import { Handles, MountError } from "../mod.ts";
import { countOps, namespaceMaps, spawns, until, withSpawnHooks, zombie } from "./_process.ts";
import { MODE, NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids, leavesNothing } from "./_leaks.ts";
import { BASE, refusedMap, simpleMapping } from "./_mappings.ts";

Deno.test({
  ...skipUnless(
    "a pooled helper that died while idle still serves a get, and is reaped then",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 2 });
    await handles.ready();
    const helpers = childPids();
    for (const pid of helpers) Deno.kill(pid, "SIGKILL");
    // Nothing waits on an idle helper: both are zombies until a get or the
    // release takes them. Their namespaces, uid_map and gid_map were opened
    // while they waited, and a dead process's namespace can still be mapped.
    await until(() => helpers.every(zombie), "the killed helpers to exit");
    const { result: fds, ops } = await countOps(() =>
      Promise.all([handles.get(simpleMapping()), handles.get(simpleMapping(0, BASE + 100, 10))])
    );
    try {
      assert.equal(spawns(ops), 0, "no spawn on the critical path");
      assert.equal((await namespaceMaps(fds[0].fd)).uid, `0 ${BASE} 2000`);
      assert.equal((await namespaceMaps(fds[1].fd)).uid, `0 ${BASE + 100} 10`);
    } finally {
      for (const fd of fds) fd.close();
    }
    await handles.settled();
    assert.ok(helpers.every((pid) => !childPids().includes(pid)), "both reaped");
  }),
});

Deno.test({
  ...skipUnless(
    "a pooled helper killed just before a get: the get still gets a mapped namespace",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 1 });
    await handles.ready();
    const [victim] = childPids();
    Deno.kill(victim, "SIGKILL");
    // No await in between: the helper may be dying, a zombie, or reaped.
    using fd = await handles.get(simpleMapping());
    assert.deepEqual(await namespaceMaps(fd.fd), {
      uid: "0 10000 2000",
      gid: "0 10000 2000",
      setgroups: "deny",
    });
  }),
});

Deno.test({
  ...skipUnless("a pooled helper whose map fails (ESRCH) is replaced by a spawn", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 1 });
    await handles.ready();
    let injected = false;
    // The pooled helper opened its map files while it waited; the first
    // write of its maps fails.
    setFaultHook((op) => {
      if (op !== "write" || injected) return undefined;
      injected = true;
      return errnoValue("ESRCH");
    });
    let fd;
    let spawned = 0;
    try {
      fd = await withSpawnHooks(
        { before: () => void spawned++ },
        () => handles.get(simpleMapping()),
      );
    } finally {
      setFaultHook(undefined);
    }
    using _ = fd;
    assert.ok(injected);
    assert.equal(spawned, 1, "one spawn instead");
    assert.equal((await namespaceMaps(fd.fd)).gid, "0 10000 2000");
  }),
});

Deno.test({
  ...skipUnless(
    "a map the kernel refuses, with a pool: the same clear error, from a fresh helper",
    MODE === "rootless" ? NO_ID_RANGE : "as root every host id is mappable; rootless covers this",
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 2 });
    await handles.ready();
    const { ops } = await countOps(() =>
      assert.rejects(handles.get(simpleMapping(0, 1000000, 10)), (e: unknown) => {
        assert.ok(e instanceof MountError);
        assert.equal(e.code, "EPERM");
        assert.match(
          e.message,
          refusedMap("0 1000000 10"),
        );
        return true;
      })
    );
    assert.equal(spawns(ops), 1, "one pooled helper tried, then one spawned");
    assert.equal(childPids().length, 1, "the other pooled helper is still there");
  }),
});

Deno.test({
  ...skipUnless(
    "an abort while a get waits for a pooled helper still starting: it is killed and reaped",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 1 });
    const [starting] = childPids();
    const controller = new AbortController();
    const pending = handles.get(simpleMapping(), { signal: controller.signal });
    const reason = new Error("stop");
    controller.abort(reason);
    await assert.rejects(pending, (e) => e === reason);
    assert.ok(!childPids().includes(starting), "the taken helper is reaped before the rejection");
    assert.equal(handles.size, 0);
  }),
});

Deno.test({
  ...skipUnless("an already aborted get leaves the pool alone", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 1 });
    await handles.ready();
    await assert.rejects(
      handles.get(simpleMapping(), { signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
    assert.equal(handles.idle, 1);
  }),
});

Deno.test({
  ...skipUnless(
    "a stopped idle helper doesn't hang a get; it is killed and reaped within helperTimeout",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 1, helperTimeout: 500 });
    await handles.ready();
    const [stopped] = childPids();
    Deno.kill(stopped, "SIGSTOP");
    try {
      const started = performance.now();
      // A stopped process can still be mapped: the get has its namespace at
      // once. It would never exit on its own once let go.
      const fd = await deadline(
        handles.get(simpleMapping(), { signal: AbortSignal.timeout(1000) }),
        3000,
        "the get",
      );
      using _ = fd;
      assert.ok(performance.now() - started < 1000, "the get did not wait for the helper");
      assert.equal((await namespaceMaps(fd.fd)).uid, "0 10000 2000");
      await deadline(handles.settled(), 3000, "the stopped helper's end");
      assert.ok(
        !childPids().includes(stopped),
        "killed (SIGKILL ends a stopped process) and reaped",
      );
      const took = performance.now() - started;
      assert.ok(took >= 450, `it had the timeout to exit first (${took.toFixed(0)} ms)`);
    } finally {
      // Before the fix, it would still be stopped here.
      if (childPids().includes(stopped)) Deno.kill(stopped, "SIGKILL");
    }
  }),
});

Deno.test({
  ...skipUnless(
    "a pooled helper stopped while it starts: the signal ends the get at once",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    let stopped = 0;
    // Stopped right after its spawn, before it is pinged: it can't echo.
    const stop = (pid: number): void => {
      stopped = pid;
      Deno.kill(pid, "SIGSTOP");
    };
    await using handles = await withSpawnHooks(
      { after: stop },
      () => Promise.resolve(new Handles({ prespawn: 1 })),
    );
    assert.ok(stopped > 0);
    const started = performance.now();
    await assert.rejects(
      handles.get(simpleMapping(), { signal: AbortSignal.timeout(300) }),
      { name: "TimeoutError" },
    );
    const took = performance.now() - started;
    assert.ok(took < 2000, `ended ${took.toFixed(0)} ms in, not at the 10 s helper timeout`);
    assert.ok(!childPids().includes(stopped), "killed and reaped before the get rejects");
  }),
});

Deno.test({
  ...skipUnless(
    "a pooled helper that keeps dying right after it starts is not respawned in a loop",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    let spawned = 0;
    await withSpawnHooks({ before: () => void spawned++ }, async () => {
      await using handles = new Handles({ prespawn: 1 });
      await handles.ready();
      // Kill every helper as soon as it idles in the pool, for a while.
      const end = performance.now() + 1000;
      while (performance.now() < end) {
        if (handles.idle > 0) { for (const pid of childPids()) Deno.kill(pid, "SIGKILL"); }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      assert.ok(spawned <= 2, `${spawned} spawns: the first helper and one replacement at most`);
      // The next get wakes the pool again.
      using fd = await handles.get(simpleMapping());
      assert.match(Deno.readLinkSync(`/proc/self/fd/${fd.fd}`), /^user:/);
    });
  }),
});

/** `promise`, or an error naming `what` once `ms` have passed. */
async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
