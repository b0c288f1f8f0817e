/**
 * Fault injection: every syscall of mountFd, Handles.get and
 * attachMountSource fails in turn, one at a time, through a faulting libc
 * symbol table (tests/_faults.ts).
 * After each failure, fds and processes are as they were, and the error names
 * the failing op and errno.
 */

import assert from "node:assert/strict";
import { errnoValue } from "../ffi/errno.ts";
import { setFaultHook } from "./_faults.ts";
import { attachMountSource, Handles, MountError, mountFd, MS_BIND, MS_REC } from "../mod.ts";
import { mountTest } from "./_mounts.ts";
import { type Fixture, MNT_DETACH_UMOUNT } from "./_fixture.ts";
import { childPids, newFds, openFds } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";

const EIO = errnoValue("EIO")!;
/** The test's own cleanup, which is not the library's and never fails here. */
const CLEANUP = "umount2";

/** The ops a scenario makes, in order, when nothing fails. */
async function recordOps(scenario: () => Promise<void>): Promise<string[]> {
  const ops: string[] = [];
  setFaultHook((op) => {
    if (op !== CLEANUP) ops.push(op);
    return undefined;
  });
  try {
    await scenario();
  } finally {
    setFaultHook(undefined);
  }
  return ops;
}

/** Fails op number `index` of the scenario with EIO; checks what is left. */
async function failAt(scenario: () => Promise<void>, index: number, op: string): Promise<void> {
  const before = openFds();
  let n = 0;
  setFaultHook((op) => (op !== CLEANUP && n++ === index ? EIO : undefined));
  try {
    await assert.rejects(scenario(), (e: unknown) => {
      assert.ok(e instanceof MountError, `${op}: ${e}`);
      assert.equal(e.op, op);
      assert.equal(e.code, "EIO");
      assert.equal(e.errno, EIO);
      assert.match(e.message, /EIO: Input\/output error/);
      return true;
    });
  } finally {
    setFaultHook(undefined);
  }
  assert.deepEqual(newFds(before), [], `fds left after ${op} failed`);
  assert.deepEqual(childPids(), [], `processes left after ${op} failed`);
}

async function sweep(
  fx: Fixture,
  scenario: () => Promise<void>,
  expected: string[],
): Promise<void> {
  // Once before: what a process does once (finding `unshare` and `cat`) is
  // not the scenario's.
  await scenario();
  const ops = await recordOps(scenario);
  assert.deepEqual(ops, expected, "the ops this scenario makes");
  for (const [index, op] of ops.entries()) await failAt(scenario, index, op);
  assert.ok(fx.dir);
}

/** Mounts a source at a fresh target, and always detaches it again. */
function attachOnce(fx: Fixture): (source: Parameters<typeof attachMountSource>[0]) => void {
  return (source) => {
    const target = fx.mkdir(`mnt-${crypto.randomUUID()}`);
    try {
      attachMountSource(source, target);
      MNT_DETACH_UMOUNT(target);
    } finally {
      Deno.removeSync(target);
    }
  };
}

// The spawn returns an error number instead of setting errno, and is not
// faulted here: a helper that fails for real is tested in userns_test.ts and
// helper_faults_test.ts. Its reaping (waitid) reports nothing (_faults.ts).
const HELPER_OPS = [
  "pipe2", // its stdin
  "pipe2", // its stdout
  "pipe2", // its stderr
  "pidfd_open",
  "open", // the helper's /proc/PID, pinned right after the spawn
  "write", // the ping
  "read", // the echo
  "open", // setgroups
  "write",
  "open", // ns/user
  "open", // uid_map
  "open", // gid_map
  "write", // uid_map
  "write", // gid_map
  "fcntl(F_DUPFD_CLOEXEC)", // the waiter's own fd
];

mountTest("every op of a plain mountFd and its attach fails cleanly", async (fx) => {
  const src = fx.mkdir("src");
  const attach = attachOnce(fx);
  await sweep(fx, async () => {
    using source = await mountFd({ source: src, destination: "/d", flags: MS_BIND | MS_REC });
    attach(source);
  }, ["open", "open_tree(OPEN_TREE_CLONE)", "open", "move_mount"]);
});

mountTest(
  "every op of an id-mapped mountFd, its helper and its attach fails cleanly",
  async (fx) => {
    const src = fx.mkdir("src");
    const attach = attachOnce(fx);
    await sweep(fx, async () => {
      using source = await mountFd({
        source: src,
        destination: "/d",
        flags: MS_BIND,
        idMapping: simpleMapping(),
      });
      attach(source);
    }, [
      "open_tree(OPEN_TREE_CLONE)",
      ...HELPER_OPS,
      "mount_setattr(MOUNT_ATTR_IDMAP)",
      "open", // the target
      "move_mount",
    ]);
  },
);

mountTest("every op of a mountFd with usernsPath fails cleanly", async (fx) => {
  const src = fx.mkdir("src");
  using handles = new Handles();
  using userns = await handles.get(simpleMapping());
  const attach = attachOnce(fx);
  await sweep(fx, async () => {
    using source = await mountFd({
      source: src,
      destination: "/d",
      flags: MS_BIND,
      idMapping: { usernsPath: `/proc/self/fd/${userns.fd}` },
    });
    attach(source);
  }, [
    "open_tree(OPEN_TREE_CLONE)",
    "open",
    "ioctl(NS_GET_NSTYPE)",
    "mount_setattr(MOUNT_ATTR_IDMAP)",
    "open", // the target
    "move_mount",
  ]);
});

mountTest("every op of Handles.get, new and cached, fails cleanly", async (fx) => {
  await sweep(fx, async () => {
    using handles = new Handles();
    using first = await handles.get(simpleMapping());
    using cached = await handles.get(simpleMapping());
    assert.notEqual(first.fd, cached.fd);
  }, [...HELPER_OPS, "fcntl(F_DUPFD_CLOEXEC)"]);
});
