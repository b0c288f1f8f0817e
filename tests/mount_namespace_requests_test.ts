/**
 * The requests a mount namespace's Worker serves: its thread, their order,
 * close() and aborts while they run or wait, requests it doesn't know, and
 * no fd or thread left over hundreds of them.
 */

import assert from "node:assert/strict";
import { errnoValue } from "../ffi/errno.ts";
import { openTestNamespace } from "./_test_namespace.ts";
import type { TestCalls } from "./_test_worker.ts";
import { Handles, openMountNamespace } from "../mod.ts";
import { mountAt, mountInfo } from "./_mountinfo.ts";
import { mountTest } from "./_mounts.ts";
import { bind, IN_NS, startHelper, threadsIn } from "./_namespace.ts";
import { newFds, openFds } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";

mountTest("the namespace is joined by one Worker thread, gone after close()", async (fx) => {
  await using helper = await startHelper(fx);
  assert.deepEqual(threadsIn(helper.nsPath), [], "no thread of ours is there yet");
  const ns = await openMountNamespace(helper.nsPath);
  const threads = threadsIn(helper.nsPath);
  assert.equal(threads.length, 1, `one thread there: ${threads}`);
  assert.notEqual(Number(threads[0].split(":")[0]), Deno.pid, "not the main thread");
  await ns.close();
  assert.equal(ns.closed, true);
  for (let i = 0; i < 100 && threadsIn(helper.nsPath).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual(threadsIn(helper.nsPath), [], "the Worker thread has ended");
});

mountTest("close() rejects requests in flight and closes the fds they open", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  const ns = await openMountNamespace(helper.nsPath);
  // The first is at the Worker already; the others wait their turn.
  const closed = {
    name: "MountError",
    op: "mount namespace worker",
    message: `mount namespace worker dst=${helper.nsPath}: the mount namespace is closed`,
  };
  const pending = [
    ns.mountFd(bind(`${dir}/src`), IN_NS),
    ns.mountFd(bind(`${dir}/src`, simpleMapping()), IN_NS),
    ns.mountInto(bind(`${dir}/src`), `${dir}/t1`, IN_NS),
    ns.mountFd(bind(`${dir}/src`), IN_NS),
  ].map((request) => assert.rejects(request, closed));
  const closing = ns.close();
  assert.equal(ns.closed, true);
  await Promise.all(pending);
  await closing;
  assert.equal(ns.close(), closing, "close() again returns the same promise");
  await assert.rejects(ns.mountFd(bind(`${dir}/src`), IN_NS), /the mount namespace is closed/);
  assert.equal(mountAt(`${dir}/t1`, helper.pid), undefined);
  // mountTest checks that the fd the first request opened was closed.
});

mountTest("close() lets an attach at the Worker finish, and reports it", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  const ns = await openMountNamespace(helper.nsPath);
  using tree = await ns.mountFd(bind(`${dir}/src`, simpleMapping()), IN_NS);
  const attached = ns.attach(tree, `${dir}/t1`);
  const queued = assert.rejects(ns.attach(tree, `${dir}/t2`), /the mount namespace is closed/);
  await ns.close();
  await attached;
  await queued;
  assert.ok(mountAt(`${dir}/t1`, helper.pid));
  assert.equal(mountAt(`${dir}/t2`, helper.pid), undefined);
});

mountTest("an abort rejects at once, and the fd that comes later is closed", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  await using ns = await openMountNamespace(helper.nsPath);
  for (const idMapping of [undefined, simpleMapping()]) {
    const controller = new AbortController();
    const pending = ns.mountFd(bind(`${dir}/src`, idMapping), {
      ...IN_NS,
      signal: controller.signal,
    });
    controller.abort(new Error("cancelled"));
    await assert.rejects(pending, { message: "cancelled" });
  }
  await assert.rejects(
    ns.mountInto(bind(`${dir}/src`), `${dir}/t1`, { ...IN_NS, signal: AbortSignal.abort() }),
    { name: "AbortError" },
  );
  // Still usable; the aborted answers were consumed in order.
  using source = await ns.mountFd(bind(`${dir}/src`), IN_NS);
  assert.equal(source.type, "plain-open");
});

mountTest("requests run one at a time, in order", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  await using ns = await openMountNamespace(helper.nsPath);
  const order: number[] = [];
  await Promise.all(
    ["t1", "t2", "t3"].map((t, i) =>
      ns.mountInto(bind(`${dir}/src`, i === 1 ? simpleMapping() : undefined), `${dir}/${t}`, IN_NS)
        .then(() => order.push(i))
    ),
  );
  assert.deepEqual(order, [0, 1, 2]);
  // The namespace's mount list is in the order mounts were attached (mount
  // ids are reused, so they can't tell).
  const points = mountInfo(helper.pid).map((m) => m.mountPoint);
  const at = ["t1", "t2", "t3"].map((t) => points.indexOf(`${dir}/${t}`));
  assert.ok(at.every((i) => i >= 0), `all three mounted: ${at}`);
  assert.deepEqual(at, at.toSorted((a, b) => a - b), "mounted in request order");
});

mountTest("no fd or thread leaks over hundreds of requests and namespaces", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  using handles = new Handles();
  // Warm up: the cached user namespace, and Deno's lazily opened fds.
  {
    await using ns = await openMountNamespace(helper.nsPath, { handles });
    (await ns.mountFd(bind(`${dir}/src`, simpleMapping()), IN_NS)).close();
  }
  const before = openFds().size;
  for (let round = 0; round < 5; round++) {
    await using ns = await openMountNamespace(helper.nsPath, { handles });
    for (let i = 0; i < 40; i++) {
      (await ns.mountFd(bind(`${dir}/src`), IN_NS)).close();
      (await ns.mountFd(bind(`${dir}/src`, simpleMapping()), IN_NS)).close();
      await assert.rejects(ns.mountFd(bind(`${dir}/missing`), IN_NS), { code: "ENOENT" });
      const controller = new AbortController();
      const aborted = ns.mountFd(bind(`${dir}/src`), { ...IN_NS, signal: controller.signal });
      controller.abort();
      await assert.rejects(aborted, { name: "AbortError" });
    }
  }
  assert.equal(openFds().size, before);
  assert.deepEqual(threadsIn(helper.nsPath), []);
});

mountTest("a request of an unknown kind is refused by the Worker", async (fx) => {
  await using helper = await startHelper(fx);
  await using ns = await openTestNamespace(helper.nsPath);
  await assert.rejects(ns.send("nonsense", {}), {
    name: "TypeError",
    message: "Unknown request: nonsense",
  });
  assert.equal(errnoValue("EIO"), 5);
});

mountTest(
  "close() during a call blocked in the kernel settles it, and closes its fds",
  async (fx) => {
    await using helper = await startHelper(fx);
    const dir = helper.dir;
    const fifo = `${fx.dir}/block`;
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    const before = openFds();
    const ns = await openTestNamespace(helper.nsPath, { closeTimeout: 500 });
    using tree = await ns.mountFd(bind(`${dir}/src`, simpleMapping()), IN_NS);
    await ns.send("blockNextAttach", { fifo } satisfies TestCalls["blockNextAttach"]);
    // The attach blocks in the Worker, in an open of the FIFO; one more waits.
    const blocked = assert.rejects(ns.attach(tree, `${dir}/t1`), {
      name: "MountError",
      op: "mount namespace worker",
      message: /the mount namespace was closed while the call ran in its worker/,
    });
    const queued = assert.rejects(ns.attach(tree, `${dir}/t2`), {
      message: /the mount namespace is closed/,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await ns.close();
    const took = Date.now() - started;
    await blocked;
    await queued;
    assert.ok(took >= 450 && took < 5000, `close() waited its timeout, not more: ${took} ms`);
    tree.close();
    // The call's copy of the source fd is closed. What is left is the blocked
    // Worker runtime's own (its pipes and socket), until its thread ends.
    const runtime = /^\d+ -> (pipe|socket):/;
    assert.deepEqual(newFds(before).filter((fd) => !runtime.test(fd)), []);
    // Unblock the Worker's thread: it ends, and takes the rest with it.
    Deno.openSync(fifo, { write: true }).close();
    for (let i = 0; i < 100 && threadsIn(helper.nsPath).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(threadsIn(helper.nsPath), []);
  },
);
