import assert from "node:assert/strict";
import { SpawnLimit } from "../lib/userns/spawn_limit.ts";

Deno.test("SpawnLimit: at most max permits; waiters are served in order", async () => {
  let freed = 0;
  const limit = new SpawnLimit(2, () => void freed++);
  const first = limit.tryAcquire()!;
  const second = await limit.acquire();
  assert.equal(limit.used, 2);
  assert.equal(limit.tryAcquire(), undefined, "none left");
  const served: number[] = [];
  const waiting = [1, 2, 3].map((n) =>
    limit.acquire().then((release) => {
      served.push(n);
      return release;
    })
  );
  assert.equal(limit.waiting, 3);
  first();
  first(); // a second call does nothing
  second();
  const [r1, r2] = await Promise.all(waiting.slice(0, 2));
  assert.deepEqual(served, [1, 2]);
  assert.equal(limit.used, 2, "each permit passed on, held all along");
  assert.equal(freed, 0, "nobody was told of a free permit while others waited");
  r1();
  const r3 = await waiting[2];
  assert.deepEqual(served, [1, 2, 3]);
  r2();
  r3();
  assert.equal(limit.used, 0);
  assert.equal(freed, 2);
});

Deno.test("SpawnLimit: a try never jumps the line", async () => {
  const limit = new SpawnLimit(1);
  const held = limit.tryAcquire()!;
  const waiter = limit.acquire();
  held();
  assert.equal(limit.tryAcquire(), undefined, "the waiter has it");
  (await waiter)();
  assert.equal(limit.used, 0);
});

Deno.test("SpawnLimit: an abort leaves the line with the signal's reason", async () => {
  const limit = new SpawnLimit(1);
  const held = limit.tryAcquire()!;
  const controller = new AbortController();
  const reason = new Error("stop");
  const aborted = limit.acquire(controller.signal);
  const next = limit.acquire();
  controller.abort(reason);
  await assert.rejects(aborted, (e) => e === reason);
  assert.equal(limit.waiting, 1);
  held();
  (await next)();
  assert.equal(limit.used, 0);
  await assert.rejects(limit.acquire(AbortSignal.abort(reason)), (e) => e === reason);
});
