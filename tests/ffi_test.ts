import assert from "node:assert/strict";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  CLONE_FS,
  CLONE_NEWNS,
  O_CLOEXEC,
  O_PATH,
  ST_NODEV,
  ST_NOEXEC,
  ST_NOSUID,
  ST_RDONLY,
} from "../ffi/constants.ts";
import { errnoDescription, errnoName, errnoValue } from "../ffi/errno.ts";
import { SYMBOLS } from "../ffi/libc.ts";
import {
  chdir,
  close,
  dupCloexec,
  fchdir,
  open,
  readlinkAt,
  setns,
  unshare,
} from "../ffi/syscalls.ts";
import { assertPath } from "../lib/check.ts";
import { cString } from "../ffi/call.ts";
import { fstatfsFlags, mountSetattr } from "../ffi/mount_api.ts";
import { MountError } from "../mod.ts";
import { setFaultHook } from "./_faults.ts";
import { fdFlags, newFds, openFds } from "./_leaks.ts";

Deno.test("errno names and descriptions", () => {
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoName(22), "EINVAL");
  assert.equal(errnoName(95), "EOPNOTSUPP");
  assert.equal(errnoName(9999), "errno 9999");
  assert.equal(errnoDescription(2), "No such file or directory");
  assert.equal(errnoValue("EOVERFLOW"), 75);
  assert.equal(errnoValue("ENOPE"), undefined);
});

Deno.test("no errno-setting symbol is nonblocking: poll alone, whose result alone is used", () => {
  for (const [name, symbol] of Object.entries(SYMBOLS)) {
    if (name === "poll_wait") continue;
    assert.ok(!("nonblocking" in symbol), `${name} must run on the calling thread`);
  }
  assert.equal(SYMBOLS.poll_wait.nonblocking, true);
});

Deno.test("paths in turn each open their own file, the same path again included", () => {
  const before = openFds();
  const paths = ["/etc", "/proc", "/etc", "/etc", "/tmp/\u00e9-missing", "/etc", "/", "/proc"];
  const files = new Map<string, string>();
  for (const path of paths) {
    if (path.includes("missing")) {
      // A non-ASCII path between two ASCII ones.
      assert.throws(() => open(path, O_PATH), { code: "ENOENT", source: path });
      continue;
    }
    const fd = open(path, O_PATH);
    try {
      const { dev, ino } = Deno.statSync(`/proc/self/fd/${fd}`);
      const file = `${dev}:${ino}`;
      assert.equal(file, files.get(path) ?? file, path);
      files.set(path, file);
    } finally {
      close(fd);
    }
  }
  assert.equal(new Set(files.values()).size, 3, "/etc, /proc and / are three files");
  assert.throws(() => open("/proc\0", O_PATH), /NUL byte/, "the last path with a NUL after it");
  assert.deepEqual(newFds(before), []);
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

Deno.test("a faulting symbol table fails a call without making it", () => {
  const before = openFds();
  setFaultHook((op) => op === "open" ? errnoValue("EMFILE") : undefined);
  try {
    assert.throws(() => open("/", O_PATH), { name: "MountError", op: "open", code: "EMFILE" });
  } finally {
    setFaultHook(undefined);
  }
  assert.deepEqual(newFds(before), []);
});

Deno.test("the namespace wrappers name their op, errno and path", () => {
  // unshare(CLONE_FS) on the main thread would split it from Deno's own
  // threads: only its failure is checked, through a faulting table.
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

Deno.test("mountSetattr() takes an op name for the error", () => {
  const seen: string[] = [];
  setFaultHook((op) => {
    seen.push(op);
    return errnoValue("EPERM");
  });
  try {
    assert.throws(
      () =>
        mountSetattr(-1, "", AT_EMPTY_PATH, { attrSet: 0 }, { op: "mount_setattr(AT_RECURSIVE)" }),
      { op: "mount_setattr(AT_RECURSIVE)", code: "EPERM" },
    );
  } finally {
    setFaultHook(undefined);
  }
  // The table sees the raw call: a mount_setattr without AT_RECURSIVE.
  assert.deepEqual(seen, ["mount_setattr"]);
});

Deno.test("MountError.withHint() keeps the op, errno, paths and reason, and wraps the error", () => {
  const error = new MountError("write", { errno: 1, target: "uid_map" });
  const hinted = error.withHint('(writing "0 1000 1")');
  assert.ok(hinted instanceof MountError);
  assert.equal(
    hinted.message,
    'write dst=uid_map: EPERM: Operation not permitted (writing "0 1000 1")',
  );
  assert.equal(hinted.op, "write");
  assert.equal(hinted.code, "EPERM");
  assert.equal(hinted.errno, 1);
  assert.equal(hinted.target, "uid_map");
  assert.equal(hinted.source, undefined);
  assert.equal(hinted.cause, error);
  // Another hint goes after the first; other paths replace the old ones.
  const twice = hinted.withHint("(again)", { target: "/proc/1/uid_map", source: "/s" });
  assert.equal(
    twice.message,
    'write src=/s, dst=/proc/1/uid_map: EPERM: Operation not permitted (writing "0 1000 1") (again)',
  );
  // A reason that is no errno is kept too.
  const short = new MountError("write", { target: "f", detail: "short write: 1 of 2 bytes" });
  assert.equal(short.withHint("(hint)").message, "write dst=f: short write: 1 of 2 bytes (hint)");
});
