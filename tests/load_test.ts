/**
 * Load: thousands of calls, and hundreds of concurrent ones, with a constant
 * fd count, no stray processes and bounded memory.
 */

import assert from "node:assert/strict";
import { Handles, type Mount, mountFd, MS_BIND } from "../mod.ts";
import { mountTest } from "./_mounts.ts";
import { countOps } from "./_process.ts";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids, newFds, openFds } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";

mountTest(
  "10,000 mountFd calls, plain and id-mapped, alternating with failing ones",
  async (fx) => {
    const src = fx.mkdir("src");
    using handles = new Handles();
    const plain: Mount = { source: src, destination: "/d", flags: MS_BIND };
    const idmapped: Mount = { ...plain, idMapping: simpleMapping() };
    const failing: Mount[] = [
      { ...plain, source: `${src}/missing` },
      { ...idmapped, source: `${src}/missing` },
      { ...plain, source: `${src}\0` },
      { ...plain, flags: 0 },
    ];
    (await mountFd(idmapped, { handles })).close(); // warm: the cached namespace
    const before = openFds();
    const rss: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 4;
      if (kind === 0) (await mountFd(plain)).close();
      else if (kind === 1) (await mountFd(idmapped, { handles })).close();
      else {
        await assert.rejects(mountFd(failing[(i >> 2) % failing.length], { handles }));
      }
      if (i % 2500 === 2499) rss.push(Deno.memoryUsage().rss);
    }
    assert.deepEqual(newFds(before), []);
    assert.deepEqual(childPids(), []);
    const growth = (rss[3] - rss[1]) / 2 ** 20;
    assert.ok(growth < 16, `RSS grew ${growth.toFixed(1)} MiB over the last 5,000 calls`);
  },
);

Deno.test({
  ...skipUnless(
    "100 concurrent gets on one mapping: one helper, 100 fds, one namespace",
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    const before = openFds();
    {
      using handles = new Handles();
      const { result: fds, ops } = await countOps(() =>
        Promise.all(Array.from({ length: 100 }, () => handles.get(simpleMapping())))
      );
      assert.equal(ops.get("spawn unshare"), 1);
      assert.equal(new Set(fds.map((fd) => fd.fd)).size, 100);
      const inodes = new Set(fds.map((fd) => Deno.statSync(`/proc/self/fd/${fd.fd}`).ino));
      assert.equal(inodes.size, 1);
      for (const fd of fds) fd.close();
    }
    assert.deepEqual(newFds(before), []);
    assert.deepEqual(childPids(), []);
  },
});

Deno.test({
  ...skipUnless(
    "100 concurrent gets on 50 distinct mappings: 50 helpers, 50 namespaces",
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    const before = openFds();
    {
      using handles = new Handles();
      const mapping = (i: number) => simpleMapping(0, 10000 + (i % 50) * 100, 100);
      const { result: fds, ops } = await countOps(() =>
        Promise.all(Array.from({ length: 100 }, (_, i) => handles.get(mapping(i))))
      );
      assert.equal(ops.get("spawn unshare"), 50);
      assert.equal(handles.size, 50);
      const inode = (i: number) => Deno.statSync(`/proc/self/fd/${fds[i].fd}`).ino;
      for (let i = 0; i < 50; i++) assert.equal(inode(i), inode(i + 50), `mapping ${i}`);
      assert.equal(new Set(fds.map((_, i) => inode(i))).size, 50);
      for (const fd of fds) fd.close();
    }
    assert.deepEqual(newFds(before), []);
    assert.deepEqual(childPids(), []);
  },
});
