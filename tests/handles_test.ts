import assert from "node:assert/strict";
import { O_CLOEXEC } from "../ffi/constants.ts";
import { Handles, type Mapping, MountError, type OwnedFd } from "../mod.ts";
import { UNSHARE } from "../lib/userns/programs.ts";
import { pidfdOpen, reap, signalPidfd } from "../ffi/process.ts";
import { close } from "../ffi/syscalls.ts";
import {
  countOps,
  namespaceMaps,
  PROBE,
  runProbe,
  stopAtSpawn,
  whenHelperReady,
  withSpawnHooks,
} from "./_process.ts";
import { MODE, NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids, fdFlags, leavesNothing, openFds } from "./_leaks.ts";
import { BASE, refusedMap, simpleMapping } from "./_mappings.ts";

/** The inode of the namespace behind an fd: equal inodes, same namespace. */
function nsInode(fd: OwnedFd): number {
  return Deno.statSync(`/proc/self/fd/${fd.fd}`).ino!;
}

const two: Mapping = {
  uidMappings: [
    { containerID: 0, hostID: BASE, size: 100 },
    { containerID: 1000, hostID: BASE + 1000, size: 10 },
  ],
  gidMappings: [{ containerID: 0, hostID: BASE + 500, size: 50 }],
};

Deno.test({
  ...skipUnless("Handles.get() makes a user namespace with the mapping", NO_ID_RANGE),
  fn: leavesNothing(async () => {
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
  ...skipUnless("Handles caches by mapping, in any order of entries", NO_ID_RANGE),
  fn: leavesNothing(async () => {
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
  ...skipUnless("a mapping changed in place after a get gets its own namespace", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    using handles = new Handles();
    const mapping = simpleMapping();
    using first = await handles.get(mapping);
    mapping.uidMappings[0].hostID += 1;
    using second = await handles.get(mapping);
    assert.notEqual(nsInode(first), nsInode(second));
    const { uid } = await namespaceMaps(second.fd);
    assert.equal(uid, `0 ${mapping.uidMappings[0].hostID} 2000`);
    assert.equal(handles.size, 2);
  }),
});

Deno.test({
  ...skipUnless("a cached mapping changed in place to a bad one is checked again", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    using handles = new Handles();
    const mapping = simpleMapping();
    (await handles.get(mapping)).close();
    (await handles.get(mapping)).close(); // from the cache, its checks skipped
    mapping.gidMappings[0].size = 0;
    await assert.rejects(handles.get(mapping), {
      name: "TypeError",
      message: /^Invalid mapping\.gidMappings\[0\]\.size: /,
    });
    mapping.gidMappings[0].size = mapping.uidMappings[0].size;
    (await handles.get(mapping)).close(); // good again: the cached namespace
    assert.equal(handles.size, 1);
  }),
});

Deno.test({
  ...skipUnless("concurrent gets for one mapping share one helper", NO_ID_RANGE),
  fn: leavesNothing(async () => {
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
  ...skipUnless(
    "release() closes the cache; earlier fds stay valid, and the Handles stays usable",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
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
  ...skipUnless(
    "release() while a helper is in flight: its waiters are served, nothing is cached",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    using handles = new Handles();
    const pending = handles.get(simpleMapping());
    handles.release();
    using fd = await pending;
    assert.match(Deno.readLinkSync(`/proc/self/fd/${fd.fd}`), /^user:/);
    assert.equal(handles.size, 0);
  }),
});

Deno.test({
  ...skipUnless(
    "an aborted get rejects with the reason, and its helper is killed and reaped",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
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
  ...skipUnless("an abort leaves other waiters on the same helper unharmed", NO_ID_RANGE),
  fn: leavesNothing(async () => {
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

Deno.test({
  ...skipUnless("the waits of a get keep Deno running only while they last", NO_ID_RANGE),
  fn: async () => {
    // Each wait on a helper is bounded by an AbortSignal.timeout of
    // helperTimeout (20 s here): a program that makes a namespace must
    // still end as soon as it is done, not when the timeouts run out.
    const mod = new URL("../mod.ts", import.meta.url).href;
    const script = `import { Handles } from "${mod}";
      const range = [{ containerID: 0, hostID: ${BASE}, size: 1 }];
      const handles = new Handles({ helperTimeout: 20000 });
      (await handles.get({ uidMappings: range, gidMappings: range })).close();
      handles.release();
      console.log("done");`;
    const start = performance.now();
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - start) / 1000;
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.equal(new TextDecoder().decode(stdout).trim(), "done");
    assert.ok(seconds < 10, `the program ended after ${seconds.toFixed(1)} s`);
  },
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
  ...skipUnless(
    "a map the kernel refuses is a clear error",
    MODE === "rootless" ? NO_ID_RANGE : "as root every host id is mappable; rootless covers this",
  ),
  fn: leavesNothing(async () => {
    using handles = new Handles();
    // This user namespace maps ids up to 65536: 1000000 is not ours to give.
    await assert.rejects(handles.get(simpleMapping(0, 1000000, 10)), (e: unknown) => {
      assert.ok(e instanceof MountError);
      assert.equal(e.op, "write");
      assert.equal(e.code, "EPERM");
      assert.match(
        e.message,
        refusedMap("0 1000000 10"),
      );
      return true;
    });
  }),
});

Deno.test({
  ...skipUnless(
    "a range across two of this process's ranges is refused, and split it works",
    MODE === "rootless" ? NO_ID_RANGE : "as root there is one range; rootless covers this",
  ),
  fn: leavesNothing(async () => {
    using handles = new Handles();
    // Rootless, our 0 and our 1..65535 are two ranges of the parent's ids.
    const across = [{ containerID: 0, hostID: 0, size: 2 }];
    await assert.rejects(handles.get({ uidMappings: across, gidMappings: across }), {
      name: "MountError",
      code: "EPERM",
      message: /\(this process maps only the uids 0\.\.0, 1\.\.\d+: a range must lie within/,
    });
    const split = [
      { containerID: 0, hostID: 0, size: 1 },
      { containerID: 1, hostID: 1, size: 1 },
    ];
    using userns = await handles.get({ uidMappings: split, gidMappings: split });
    assert.ok(userns.fd >= 0);
  }),
});

/** Resolves after `ms`. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test({
  ...skipUnless(
    "an abort by a flight's last waiter never fails a later get of the same mapping",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    for (const prespawn of [0, 1]) {
      for (const ms of [0, 1, 3]) {
        await using handles = new Handles({ prespawn });
        await handles.ready();
        const controller = new AbortController();
        const reason = new Error(`abort at ${ms} ms`);
        const first = handles.get(simpleMapping(), { signal: controller.signal });
        if (ms > 0) await delay(ms);
        controller.abort(reason);
        // Comes after the abort, while the aborted flight may still run.
        const later = handles.get(simpleMapping());
        const [a, b] = await Promise.allSettled([first, later]);
        const where = `prespawn ${prespawn}, ${ms} ms`;
        assert.equal(
          b.status,
          "fulfilled",
          `the later get (${where}): ${(b as { reason?: unknown }).reason}`,
        );
        (b as PromiseFulfilledResult<OwnedFd>).value.close();
        if (a.status === "fulfilled") a.value.close();
        else assert.equal(a.reason, reason, where);
      }
    }
  }),
});

Deno.test({
  ...skipUnless(
    "a stopped helper times out after helperTimeout, and is killed and reaped",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ helperTimeout: 300 });
    const started = performance.now();
    // Stopped right after its spawn, before it is pinged: it can't echo.
    const pending = withSpawnHooks({ after: stopAtSpawn }, () => handles.get(simpleMapping()));
    await assert.rejects(pending, (e: unknown) => {
      assert.ok(e instanceof MountError);
      assert.equal(e.code, "ETIMEDOUT");
      assert.match(
        e.message,
        /^userns helper: ETIMEDOUT: \/\S+\/unshare did not enter a new user namespace within 300 ms$/,
      );
      return true;
    });
    assert.ok(performance.now() - started < 3000, "bounded by the timeout");
    assert.deepEqual(childPids(), [], "killed and reaped before the get rejects");
  }),
});

Deno.test({
  ...skipUnless(
    "a signal ends a get on a stopped helper at once, and the helper is killed and reaped",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles();
    const started = performance.now();
    const pending = withSpawnHooks(
      { after: stopAtSpawn },
      () => handles.get(simpleMapping(), { signal: AbortSignal.timeout(200) }),
    );
    await assert.rejects(pending, { name: "TimeoutError" });
    const took = performance.now() - started;
    assert.ok(took < 1500, `the get ended ${took.toFixed(0)} ms in, not at the 10 s timeout`);
    assert.deepEqual(childPids(), []);
  }),
});

Deno.test({
  ...skipUnless(
    "a helper reaped between its echo and its maps: writes go through its pinned /proc/PID",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    using handles = new Handles();
    let pid = 0;
    // Once it has echoed, kill it and reap it here: its pid is free for
    // another process before the parent writes a map.
    const reapNow = (child: number): void => {
      pid = child;
      const pidfd = pidfdOpen(child);
      try {
        signalPidfd(pidfd, 9);
        while (reap(pidfd) === undefined);
      } finally {
        close(pidfd);
      }
    };
    await assert.rejects(
      whenHelperReady(reapNow, () => handles.get(simpleMapping())),
      (e: unknown) => {
        assert.ok(e instanceof MountError, String(e));
        // Not an open of /proc/PID after the reaping, which could be another
        // process's by then, but a write through the directory pinned at the
        // spawn, which can only reach the helper.
        assert.equal(e.op, "open");
        assert.equal(e.target, `/proc/${pid}/setgroups`);
        return true;
      },
    );
  }),
});

Deno.test({
  ...skipUnless("the helper is unshare --user -- cat, both by absolute path", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    const spawned: string[][] = [];
    const hooks = {
      before: (command: string, args: readonly string[]) => void spawned.push([command, ...args]),
    };
    const cmdline = await withSpawnHooks(hooks, async () => {
      await using handles = new Handles({ prespawn: 1 });
      await handles.ready();
      const [pid] = childPids();
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
    });
    assert.equal(spawned.length, 1);
    const [unshare, ...args] = spawned[0];
    assert.match(unshare, /^\/(usr\/)?s?bin\/unshare$/);
    assert.equal(args.length, 3);
    assert.deepEqual(args.slice(0, 2), ["--user", "--"]);
    assert.match(args[2], /^\/(usr\/)?s?bin\/cat$/);
    assert.deepEqual(cmdline, [args[2]], "cat runs by the path unshare was given: no PATH search");
  }),
});

Deno.test("a helper that fails before it is ready is a clear error with its stderr", async () => {
  // unshare fails for real: in a user namespace whose limit of child user
  // namespaces is 0, its unshare(CLONE_NEWUSER) gets ENOSPC.
  const result = await runProbe(UNSHARE.path, [
    "--user",
    "--map-root-user",
    "--",
    "/bin/sh",
    "-c",
    `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" run --allow-all ${PROBE} get`,
    Deno.execPath(),
  ]);
  assert.deepEqual(result, {
    name: "MountError",
    op: "userns helper",
    message: `userns helper: ${UNSHARE.path} exited before entering a new user namespace ` +
      "(exit code 1): unshare: unshare failed: No space left on device",
    spawned: [UNSHARE.path],
  });
});
