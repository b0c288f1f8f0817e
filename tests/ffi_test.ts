import assert from "node:assert/strict";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  CLONE_FS,
  CLONE_NEWNS,
  MOUNT_ATTR_NOSUID,
  MOVE_MOUNT_F_EMPTY_PATH,
  O_CLOEXEC,
  O_PATH,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  ST_NODEV,
  ST_NOEXEC,
  ST_NOSUID,
  ST_RDONLY,
} from "../ffi/constants.ts";
import { errnoDescription, errnoName, errnoValue } from "../ffi/errno.ts";
import { SYMBOLS } from "../ffi/libc.ts";
import { forceRawSyscalls, setFaultHook } from "../ffi/seam.ts";
import {
  assertPath,
  chdir,
  close,
  cString,
  dupCloexec,
  fchdir,
  fstatfsFlags,
  mount,
  mountSetattr,
  moveMount,
  open,
  openTree,
  readlinkAt,
  setns,
  unshare,
} from "../ffi/syscalls.ts";
import { MountError } from "../mod.ts";
import { CANNOT_MOUNT, fdFlags, newFds, openFds, skipUnless } from "./_util.ts";

Deno.test("errno names and descriptions", () => {
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoName(22), "EINVAL");
  assert.equal(errnoName(95), "EOPNOTSUPP");
  assert.equal(errnoName(9999), "errno 9999");
  assert.equal(errnoDescription(2), "No such file or directory");
  assert.equal(errnoValue("EOVERFLOW"), 75);
  assert.equal(errnoValue("ENOPE"), undefined);
});

Deno.test("no errno-setting symbol is nonblocking", () => {
  for (const [name, symbol] of Object.entries(SYMBOLS)) {
    assert.ok(!("nonblocking" in symbol), `${name} must run on the calling thread`);
  }
});

Deno.test("a path with a NUL byte never reaches libc", () => {
  let calls = 0;
  setFaultHook(() => {
    calls++;
    return undefined;
  });
  try {
    assert.throws(() => open("/etc\0/passwd", O_PATH), {
      name: "TypeError",
      message: 'Invalid path: contains a NUL byte: "/etc\\u0000/passwd"',
    });
    assert.throws(() => assertPath(42, "mount.target"), {
      name: "TypeError",
      message: "Invalid mount.target: expected a string, got number",
    });
    assert.throws(() => cString(null as unknown as string, "x"), /got null/);
    assert.equal(calls, 0);
  } finally {
    setFaultHook(undefined);
  }
  assert.deepEqual([...cString("/a", "x")], [47, 97, 0]);
});

Deno.test("open() is close-on-exec and reports errno", () => {
  const fd = open("/", O_PATH);
  try {
    assert.equal(fdFlags(fd) & (O_PATH | O_CLOEXEC), O_PATH | O_CLOEXEC);
  } finally {
    close(fd);
  }
  assert.throws(() => open("/nonexistent/x", O_PATH), (e: unknown) => {
    assert.ok(e instanceof MountError);
    assert.equal(e.op, "open");
    assert.equal(e.code, "ENOENT");
    assert.equal(e.errno, 2);
    assert.equal(e.source, "/nonexistent/x");
    assert.equal(e.message, "open src=/nonexistent/x: ENOENT: No such file or directory");
    return true;
  });
});

Deno.test("close() returns EBADF for a stale fd, and dupCloexec() sets FD_CLOEXEC", () => {
  const fd = open("/", O_PATH);
  const copy = dupCloexec(fd);
  assert.notEqual(copy, fd);
  assert.ok(fdFlags(copy) & O_CLOEXEC);
  assert.equal(close(copy), 0);
  assert.equal(close(fd), 0);
  assert.equal(close(fd), errnoValue("EBADF"));
  assert.throws(() => dupCloexec(fd), { name: "MountError", code: "EBADF" });
});

Deno.test("errno survives garbage collection between the call and the read", () => {
  // Allocate heavily around failing calls: errno must stay the call's.
  for (let i = 0; i < 200; i++) {
    const junk = Array.from({ length: 2000 }, (_, k) => ({ k, s: `x${k}` }));
    assert.throws(() => open("/nonexistent", O_PATH), { code: "ENOENT" });
    assert.throws(() => dupCloexec(-1), { code: "EBADF" });
    assert.ok(junk.length);
  }
});

Deno.test("the fault seam fails a call without making it", () => {
  const before = openFds();
  setFaultHook((op) => op === "open" ? errnoValue("EMFILE") : undefined);
  try {
    assert.throws(() => open("/", O_PATH), { name: "MountError", op: "open", code: "EMFILE" });
  } finally {
    setFaultHook(undefined);
  }
  assert.deepEqual(newFds(before), []);
});

Deno.test({
  name: "the raw syscall(2) path of the new mount API works like glibc's wrappers",
  ignore: skipUnless(CANNOT_MOUNT),
  fn(): void {
    const before = openFds();
    forceRawSyscalls(true);
    try {
      const tree = openTree(AT_FDCWD, "/tmp", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      try {
        assert.ok(fdFlags(tree) & O_CLOEXEC);
        mountSetattr(tree, "", AT_EMPTY_PATH, { attrSet: MOUNT_ATTR_NOSUID });
        assert.throws(
          () => moveMount(tree, "", AT_FDCWD, "/nonexistent/x", MOVE_MOUNT_F_EMPTY_PATH),
          { name: "MountError", op: "move_mount", code: "ENOENT", target: "/nonexistent/x" },
        );
      } finally {
        close(tree);
      }
      assert.throws(
        () => openTree(AT_FDCWD, "/nonexistent", OPEN_TREE_CLONE),
        { op: "open_tree(OPEN_TREE_CLONE)", code: "ENOENT", source: "/nonexistent" },
      );
      assert.throws(
        () => mountSetattr(-1, "", AT_EMPTY_PATH, { attrSet: MOUNT_ATTR_NOSUID }),
        { op: "mount_setattr", code: "EBADF" },
      );
    } finally {
      forceRawSyscalls(false);
    }
    assert.deepEqual(newFds(before), []);
  },
});

Deno.test("the namespace wrappers name their op, errno and path", () => {
  // unshare(CLONE_FS) on the main thread would split it from Deno's own
  // threads: only its failure is checked, through the seam.
  setFaultHook((op) => op === "unshare(CLONE_FS)" ? errnoValue("EINVAL") : undefined);
  try {
    assert.throws(() => unshare(CLONE_FS), {
      name: "MountError",
      op: "unshare(CLONE_FS)",
      message: "unshare(CLONE_FS): EINVAL: Invalid argument",
    });
  } finally {
    setFaultHook(undefined);
  }
  assert.throws(() => setns(-1, CLONE_NEWNS, "/proc/1/ns/mnt"), {
    op: "setns(CLONE_NEWNS)",
    code: "EBADF",
    message: "setns(CLONE_NEWNS) dst=/proc/1/ns/mnt: EBADF: Bad file descriptor",
  });
  assert.throws(() => fchdir(-1, "/proc"), { op: "fchdir", code: "EBADF", target: "/proc" });
  assert.throws(() => chdir("/nonexistent"), { op: "chdir", code: "ENOENT" });
  assert.match(readlinkAt(AT_FDCWD, "/proc/thread-self/ns/mnt"), /^mnt:\[\d+\]$/);
  assert.throws(() => readlinkAt(AT_FDCWD, "/"), { op: "readlinkat", code: "EINVAL" });
});

Deno.test("fstatfsFlags() reads a mount's flags, even through an O_PATH fd", () => {
  const line = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .find((l) => l.split(" ")[4] === "/proc");
  assert.ok(line, "/proc is mounted");
  const options = line.split(" ")[5].split(",");
  const fd = open("/proc", O_PATH);
  let flags: number;
  try {
    flags = fstatfsFlags(fd);
  } finally {
    close(fd);
  }
  for (
    const [name, bit] of [["ro", ST_RDONLY], ["nosuid", ST_NOSUID], ["nodev", ST_NODEV], [
      "noexec",
      ST_NOEXEC,
    ]] as const
  ) {
    assert.equal((flags & bit) !== 0, options.includes(name), name);
  }
  assert.throws(() => fstatfsFlags(-1, { source: "/x" }), { op: "fstatfs", code: "EBADF" });
});

Deno.test("mount() and mountSetattr() take an op name for the error and the seam", () => {
  const seen: string[] = [];
  setFaultHook((op) => {
    seen.push(op);
    return errnoValue("EPERM");
  });
  try {
    assert.throws(
      () => mount(null, "/x", null, 0, null, { op: "mount(MS_BIND|MS_REMOUNT)", source: "/s" }),
      {
        op: "mount(MS_BIND|MS_REMOUNT)",
        message: /^mount\(MS_BIND\|MS_REMOUNT\) src=\/s, dst=\/x: EPERM/,
      },
    );
    assert.throws(
      () =>
        mountSetattr(-1, "", AT_EMPTY_PATH, { attrSet: 0 }, { op: "mount_setattr(AT_RECURSIVE)" }),
      { op: "mount_setattr(AT_RECURSIVE)", code: "EPERM" },
    );
  } finally {
    setFaultHook(undefined);
  }
  assert.deepEqual(seen, ["mount(MS_BIND|MS_REMOUNT)", "mount_setattr(AT_RECURSIVE)"]);
});
