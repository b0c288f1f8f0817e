import assert from "node:assert/strict";
import { abortable, afterThisTurn, delay, orAbort, within } from "../lib/async.ts";

Deno.test("abortable: settled by its work, or by an abort; a late value is handed back", async () => {
  let settleLater: ((value: number) => boolean) | undefined;
  const controller = new AbortController();
  const waiting = abortable<number>(controller.signal, ({ resolve }) => {
    settleLater = resolve;
  });
  controller.abort(new Error("stop"));
  await assert.rejects(waiting, { message: "stop" });
  const late = settleLater!(1);
  assert.equal(late, false, "a value that comes after the abort is the caller's to clean up");
  assert.equal(await abortable<number>(undefined, ({ resolve }) => resolve(2)), 2);
});

Deno.test("abortable: an already aborted signal ends the wait once the work has started", async () => {
  const started: string[] = [];
  const signal = AbortSignal.abort(new Error("gone"));
  await assert.rejects(
    abortable(signal, () => void started.push("started")),
    { message: "gone" },
  );
  assert.deepEqual(started, ["started"]);
  // Work that settles at once wins over the abort.
  assert.equal(await abortable(signal, ({ resolve }) => resolve("done")), "done");
});

Deno.test("abortable: a custom onAbort decides, and the listener is removed once settled", async () => {
  const controller = new AbortController();
  const aborts: string[] = [];
  const result = await abortable<string>(controller.signal, ({ resolve }) => {
    queueMicrotask(() => resolve("work"));
  }, ({ resolve }) => {
    aborts.push("abort");
    resolve("aborted");
  });
  controller.abort();
  assert.equal(result, "work");
  assert.deepEqual(aborts, [], "no abort handler runs after the promise settled");
  const controller2 = new AbortController();
  const waiting = abortable<string>(controller2.signal, () => {}, ({ resolve }) => {
    resolve("aborted");
  });
  controller2.abort();
  assert.equal(await waiting, "aborted");
});

Deno.test("within: true when it settles in time, false when time runs out, the reason on abort", async () => {
  assert.equal(await within(Promise.resolve(), 1000), true);
  assert.equal(await within(new Promise(() => {}), 10), false);
  await assert.rejects(within(Promise.reject(new Error("failed")), 1000), { message: "failed" });
  const controller = new AbortController();
  const waiting = within(new Promise(() => {}), 10_000, controller.signal);
  controller.abort(new Error("aborted"));
  await assert.rejects(waiting, { message: "aborted" });
  await assert.rejects(within(Promise.resolve(), 1000, AbortSignal.abort(new Error("before"))), {
    message: "before",
  });
});

Deno.test("orAbort, delay and afterThisTurn", async () => {
  assert.equal(await orAbort(Promise.resolve(3), undefined), 3);
  const controller = new AbortController();
  const waiting = orAbort(new Promise(() => {}), controller.signal);
  controller.abort(new Error("left"));
  await assert.rejects(waiting, { message: "left" });
  const start = performance.now();
  await delay(20);
  assert.ok(performance.now() - start >= 15, "delay waits");
  const ran: string[] = [];
  afterThisTurn(() => ran.push("ran"));
  const cancel = afterThisTurn(() => ran.push("cancelled"));
  cancel();
  assert.deepEqual(ran, [], "not in this turn");
  await delay(20);
  assert.deepEqual(ran, ["ran"]);
});

Deno.test("afterThisTurn: the jobs of a turn run in order, each once, one failing", async () => {
  const ran: number[] = [];
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent): void => {
    event.preventDefault();
    reported.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const job = (): void => void ran.push(1);
    afterThisTurn(job);
    afterThisTurn(() => {
      throw new Error("job 2");
    });
    afterThisTurn(job); // the same function twice runs twice
    let cancel = (): void => {};
    afterThisTurn(() => {
      cancel(); // a job cancels one after it
      afterThisTurn(() => ran.push(6)); // a job's own job waits for the next turn
      ran.push(5);
    });
    cancel = afterThisTurn(() => ran.push(4));
    await delay(20);
    assert.deepEqual(ran, [1, 1, 5, 6]);
    assert.deepEqual(reported.map((error) => (error as Error).message), ["job 2"]);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("afterThisTurn: a job runs though nothing holds its timer but Deno (a GC first)", async () => {
  const script = `import { afterThisTurn } from ${
    JSON.stringify(import.meta.resolve("../lib/async.ts"))
  };
afterThisTurn(() => console.log("ran"));
(globalThis as unknown as { gc(): void }).gc();
(globalThis as unknown as { gc(): void }).gc();`;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", "--ext=ts", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  assert.equal(new TextDecoder().decode(stdout), "ran\n");
});
