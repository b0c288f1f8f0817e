import assert from "node:assert/strict";
import { O_CLOEXEC } from "../ffi/constants.ts";
import { Handles, type Mapping, MountError, type OwnedFd } from "../mod.ts";
import { countOps, namespaceMaps } from "./_process.ts";
import {
  BASE,
  childPids,
  fdFlags,
  MODE,
  newFds,
  NO_ID_RANGE,
  openFds,
  simpleMapping,
  skipUnless,
} from "./_util.ts";

const ignore = skipUnless(NO_ID_RANGE);

/** The inode of the namespace behind an fd: equal inodes, same namespace. */
function nsInode(fd: OwnedFd): number {
  return Deno.statSync(`/proc/self/fd/${fd.fd}`).ino!;
}

/** Runs a test body and checks it leaves no fd and no child process. */
function clean(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    const before = openFds();
    await fn();
    assert.deepEqual(newFds(before), [], "fds leaked");
    assert.deepEqual(childPids(), [], "helper processes left");
  };
}

const two: Mapping = {
  uidMappings: [
    { containerID: 0, hostID: BASE, size: 100 },
    { containerID: 1000, hostID: BASE + 1000, size: 10 },
  ],
  gidMappings: [{ containerID: 0, hostID: BASE + 500, size: 50 }],
};

Deno.test({
  name: "Handles.get() makes a user namespace with the mapping",
  ignore,
  fn: clean(async () => {
    using handles = new Handles();
    using fd = await handles.get(two);
    assert.match(Deno.readLinkSync(`/proc/self/fd/${fd.fd}`), /^user:\[\d+\]$/);
    assert.ok(fdFlags(fd.fd) & O_CLOEXEC, "the fd is close-on-exec");
    assert.deepEqual(await namespaceMaps(fd.fd), {
      uid: `0 ${BASE} 100\n1000 ${BASE + 1000} 10`,
      gid: `0 ${BASE + 500} 50`,
      setgroups: "deny",
    });
  }),
});

Deno.test({
  name: "Handles caches by mapping, in any order of entries",
  ignore,
  fn: clean(async () => {
    using handles = new Handles();
    const { result, ops } = await countOps(async () => {
      using a = await handles.get(two);
      using b = await handles.get(two);
      using c = await handles.get({
        uidMappings: [...two.uidMappings].reverse(),
        gidMappings: two.gidMappings,
      });
      using other = await handles.get(simpleMapping());
      assert.notEqual(a.fd, b.fd, "each get is its own dup");
      assert.notEqual(b.fd, c.fd);
      assert.equal(nsInode(a), nsInode(b));
      assert.equal(nsInode(a), nsInode(c));
      assert.notEqual(nsInode(a), nsInode(other));
      return handles.size;
    });
    assert.equal(result, 2);
    assert.equal(ops.get("spawn unshare"), 2, "one helper per distinct mapping");
  }),
});

Deno.test({
  name: "concurrent gets for one mapping share one helper",
  ignore,
  fn: clean(async () => {
    using handles = new Handles();
    const { result: fds, ops } = await countOps(() =>
      Promise.all(Array.from({ length: 20 }, () => handles.get(simpleMapping())))
    );
    try {
      assert.equal(ops.get("spawn unshare"), 1);
      assert.equal(new Set(fds.map((fd) => fd.fd)).size, 20);
      assert.equal(new Set(fds.map(nsInode)).size, 1);
    } finally {
      for (const fd of fds) fd.close();
    }
  }),
});

Deno.test({
  name: "release() closes the cache; earlier fds stay valid, and the Handles stays usable",
  ignore,
  fn: clean(async () => {
    const handles = new Handles();
    using first = await handles.get(simpleMapping());
    const inode = nsInode(first);
    const before = openFds();
    handles.release();
    assert.equal(handles.size, 0);
    assert.equal(before.size - openFds().size, 1, "the cached fd is closed");
    assert.equal(nsInode(first), inode, "the fd from before is still valid");
    using again = await handles.get(simpleMapping());
    assert.notEqual(nsInode(again), inode, "a new namespace after release");
    handles.release();
    handles.release();
  }),
});

Deno.test({
  name: "release() while a helper is in flight: its waiters are served, nothing is cached",
  ignore,
  fn: clean(async () => {
    using handles = new Handles();
    const pending = handles.get(simpleMapping());
    handles.release();
    using fd = await pending;
    assert.match(Deno.readLinkSync(`/proc/self/fd/${fd.fd}`), /^user:/);
    assert.equal(handles.size, 0);
  }),
});

Deno.test({
  name: "an aborted get rejects with the reason, and its helper is killed and reaped",
  ignore,
  fn: clean(async () => {
    using handles = new Handles();
    const controller = new AbortController();
    const pending = handles.get(simpleMapping(), { signal: controller.signal });
    const reason = new Error("stop");
    controller.abort(reason);
    await assert.rejects(pending, (e) => e === reason);
    assert.deepEqual(childPids(), []);
  }),
});

Deno.test({
  name: "an abort leaves other waiters on the same helper unharmed",
  ignore,
  fn: clean(async () => {
    using handles = new Handles();
    const controller = new AbortController();
    const aborted = handles.get(simpleMapping(), { signal: controller.signal });
    const kept = handles.get(simpleMapping());
    controller.abort();
    await assert.rejects(aborted, { name: "AbortError" });
    using fd = await kept;
    assert.match(Deno.readLinkSync(`/proc/self/fd/${fd.fd}`), /^user:/);
  }),
});

Deno.test("an already aborted signal rejects before any helper", async () => {
  using handles = new Handles();
  const { ops } = await countOps(() =>
    assert.rejects(
      handles.get(simpleMapping(), { signal: AbortSignal.abort() }),
      { name: "AbortError" },
    )
  );
  assert.equal(ops.size, 0);
});

Deno.test("a bad mapping is a TypeError, before any helper", async () => {
  using handles = new Handles();
  const { ops } = await countOps(async () => {
    await assert.rejects(
      handles.get({ uidMappings: [{ containerID: 0, hostID: 1, size: 0 }], gidMappings: [] }),
      { name: "TypeError", message: /^Invalid mapping\.uidMappings\[0\]\.size: / },
    );
    await assert.rejects(
      handles.get({ uidMappings: simpleMapping().uidMappings } as unknown as Mapping),
      { name: "TypeError", message: /^Invalid mapping\.gidMappings: expected an array/ },
    );
  });
  assert.equal(ops.size, 0);
});

Deno.test("bad options are TypeErrors", () => {
  assert.throws(() => new Handles({ prespawn: -1 }), /^TypeError: Invalid prespawn/);
  assert.throws(() => new Handles({ helperTimeout: 0 }), /^TypeError: Invalid helperTimeout/);
});

Deno.test({
  name: "a map the kernel refuses is a clear error",
  ignore: skipUnless(
    MODE === "rootless" ? NO_ID_RANGE : "as root every host id is mappable; rootless covers this",
  ),
  fn: clean(async () => {
    using handles = new Handles();
    // This user namespace maps ids up to 65536: 1000000 is not ours to give.
    await assert.rejects(handles.get(simpleMapping(0, 1000000, 10)), (e: unknown) => {
      assert.ok(e instanceof MountError);
      assert.equal(e.op, "write");
      assert.equal(e.code, "EPERM");
      assert.match(
        e.message,
        /^write dst=\/proc\/\d+\/uid_map: EPERM: .* \(writing "0 1000000 10"\)$/,
      );
      return true;
    });
  }),
});
