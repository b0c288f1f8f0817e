/**
 * The file wrappers on a scratch directory: close-on-exec fds, openat2()'s
 * RESOLVE_* flags, openAt() and mkdirat(), fileInfo() (statx), this
 * architecture's O_* flags, and the raw syscall(2) path of the new mount API.
 */

import assert from "node:assert/strict";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  MOUNT_ATTR_NOSUID,
  MOVE_MOUNT_F_EMPTY_PATH,
  NSFS_MAGIC,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_LARGEFILE,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  OPEN_TREE_CLONE,
  PROC_SUPER_MAGIC,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from "../ffi/constants.ts";
import { errnoValue } from "../ffi/errno.ts";
import { assertSupportedArch, replaceSymbols } from "../ffi/libc.ts";
import { close, dupCloexec, mkdirat, open, openAt, openat2 } from "../ffi/syscalls.ts";
import { fileInfo, fstatfsType, mountSetattr, moveMount, openTree } from "../ffi/mount_api.ts";
import { faultingSymbols, setFaultHook } from "./_faults.ts";
import { CANNOT_MOUNT, skipUnless } from "./_env.ts";
import { fdFlags, newFds, openFds } from "./_leaks.ts";

Deno.test({
  ...skipUnless(
    "the raw syscall(2) path of the new mount API and statx works like glibc's wrappers",
    CANNOT_MOUNT,
  ),
  fn(): void {
    using s = scratch();
    const before = openFds();
    const calls: string[] = [];
    {
      // A libc without the glibc wrappers: the table binds syscall(2).
      using _ = replaceSymbols((loaded) =>
        faultingSymbols(
          { ...loaded, open_tree: null, move_mount: null, mount_setattr: null, statx: null },
          (_, call) => {
            calls.push(call.symbol);
            return undefined;
          },
        )
      );
      // A directory of its own: /tmp may have locked submounts (rootless).
      const tree = openTree(AT_FDCWD, s.dir, OPEN_TREE_CLONE);
      try {
        assert.ok(fdFlags(tree) & O_CLOEXEC);
        mountSetattr(tree, "", AT_EMPTY_PATH, { attrSet: MOUNT_ATTR_NOSUID });
        assert.equal(fileInfo(tree).mode & S_IFMT, S_IFDIR);
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
      assert.throws(() => fileInfo(-1), { op: "statx", code: "EBADF" });
    }
    assert.deepEqual(calls, [
      "syscall_open_tree",
      "syscall_mount_setattr",
      "syscall_statx",
      "syscall_move_mount",
      "syscall_open_tree",
      "syscall_mount_setattr",
      "syscall_statx",
    ]);
    assert.deepEqual(newFds(before), []);
  },
});

/** A scratch directory: `dir/file`, `dir/sub/`, `dir/abs -> /sub`, `dir/up -> ../../..`. */
function scratch(): { dir: string } & Disposable {
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-ffi-" });
  Deno.writeTextFileSync(`${dir}/file`, "x");
  Deno.mkdirSync(`${dir}/sub`);
  Deno.symlinkSync("/sub", `${dir}/abs`);
  Deno.symlinkSync("../../..", `${dir}/up`);
  return { dir, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

/** The path an fd refers to, from /proc/self/fd. */
function fdPath(fd: number): string {
  return Deno.readLinkSync(`/proc/self/fd/${fd}`);
}

Deno.test("every fd-returning wrapper is close-on-exec, asked or not", () => {
  using s = scratch();
  const before = openFds();
  const root = open(s.dir, O_PATH);
  const fds = [
    root,
    openAt(root, "file", O_RDONLY),
    openat2(root, "sub", O_PATH, 0),
    dupCloexec(root),
  ];
  if (!CANNOT_MOUNT) fds.push(openTree(AT_FDCWD, s.dir, OPEN_TREE_CLONE));
  try {
    for (const fd of fds) assert.ok(fdFlags(fd) & O_CLOEXEC, fdPath(fd));
  } finally {
    for (const fd of fds) close(fd);
  }
  assert.deepEqual(newFds(before), []);
});

Deno.test("openat2() resolves as its RESOLVE_* flags say", () => {
  using s = scratch();
  const before = openFds();
  const root = open(s.dir, O_PATH | O_DIRECTORY);
  try {
    const inRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    // An absolute symlink and a `..` chain stay inside the root.
    for (const [path, expected] of [["abs", "sub"], ["up/sub", "sub"], ["/../../file", "file"]]) {
      const fd = openat2(root, path, O_PATH, inRoot);
      try {
        assert.equal(fdPath(fd), `${s.dir}/${expected}`, path);
      } finally {
        close(fd);
      }
    }
    // Without RESOLVE_IN_ROOT, the same symlink leaves the root.
    assert.throws(() => openat2(root, "abs", O_PATH, 0), {
      name: "MountError",
      op: "openat2",
      code: "ENOENT",
      source: "abs",
      message: "openat2 src=abs: ENOENT: No such file or directory",
    });
    assert.throws(() => openat2(root, "up/sub", O_PATH, RESOLVE_BENEATH), { code: "EXDEV" });
    assert.throws(() => openat2(root, "abs", O_PATH, RESOLVE_NO_SYMLINKS), { code: "ELOOP" });
    assert.throws(() => openat2(root, "file", O_PATH | O_DIRECTORY, inRoot), { code: "ENOTDIR" });
    const proc = open("/proc/self/fd", O_PATH);
    try {
      assert.throws(
        () => openat2(proc, String(root), O_PATH, RESOLVE_NO_MAGICLINKS),
        { code: "ELOOP" },
      );
      const viaMagic = openat2(proc, String(root), O_PATH, 0);
      close(viaMagic);
    } finally {
      close(proc);
    }
    const slash = open("/", O_PATH);
    try {
      assert.throws(() => openat2(slash, "proc/self", O_PATH, RESOLVE_NO_XDEV), { code: "EXDEV" });
    } finally {
      close(slash);
    }
  } finally {
    close(root);
  }
  assert.deepEqual(newFds(before), []);
});

Deno.test("openat2() failures a caller falls back on keep their code", () => {
  for (const code of ["ENOSYS", "EPERM"]) {
    setFaultHook((op) => op === "openat2" ? errnoValue(code) : undefined);
    try {
      assert.throws(() => openat2(AT_FDCWD, "/", O_PATH, RESOLVE_IN_ROOT), {
        name: "MountError",
        op: "openat2",
        code,
      });
    } finally {
      setFaultHook(undefined);
    }
  }
});

Deno.test("openAt() creates with a mode, and mkdirat() makes a directory", () => {
  using s = scratch();
  const before = openFds();
  const umask = Deno.umask();
  const root = open(s.dir, O_PATH | O_DIRECTORY);
  try {
    close(openAt(root, "new", O_WRONLY | O_CREAT | O_EXCL, 0o640));
    assert.equal(Deno.statSync(`${s.dir}/new`).mode! & 0o777, 0o640 & ~umask);
    assert.throws(() => openAt(root, "new", O_WRONLY | O_CREAT | O_EXCL, 0o640), {
      op: "open",
      code: "EEXIST",
    });
    mkdirat(root, "dir", 0o750);
    assert.ok(Deno.statSync(`${s.dir}/dir`).isDirectory);
    assert.equal(Deno.statSync(`${s.dir}/dir`).mode! & 0o777, 0o750 & ~umask);
    assert.throws(() => mkdirat(root, "dir", 0o755), {
      name: "MountError",
      op: "mkdirat",
      code: "EEXIST",
      target: "dir",
      message: "mkdirat dst=dir: EEXIST: File exists",
    });
    assert.throws(() => mkdirat(root, "nonexistent/dir", 0o755), { code: "ENOENT" });
  } finally {
    close(root);
  }
  assert.deepEqual(newFds(before), []);
});

Deno.test("fileInfo() gives the type, mode and mount id of a file", () => {
  using s = scratch();
  const before = openFds();
  const root = open(s.dir, O_PATH | O_DIRECTORY);
  try {
    const info = fileInfo(root);
    assert.equal(info.mode & S_IFMT, S_IFDIR);
    assert.equal(info.mode & 0o7777, Deno.statSync(s.dir).mode! & 0o7777);
    assert.equal(fileInfo(root, "file").mode & S_IFMT, S_IFREG);
    assert.equal(fileInfo(root, "abs", AT_SYMLINK_NOFOLLOW).mode & S_IFMT, S_IFLNK);
    assert.throws(() => fileInfo(root, "abs"), { op: "statx", code: "ENOENT", source: "abs" });
    assert.throws(() => fileInfo(-1), { op: "statx", code: "EBADF" });
  } finally {
    close(root);
  }
  // The mount id is mountinfo's first field.
  const line = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .find((l) => l.split(" ")[4] === "/proc");
  assert.ok(line, "/proc is mounted");
  const proc = open("/proc", O_PATH);
  try {
    assert.equal(fileInfo(proc).mountId, Number(line.split(" ")[0]));
    assert.equal(fstatfsType(proc), PROC_SUPER_MAGIC);
  } finally {
    close(proc);
  }
  const ns = open("/proc/self/ns/user", O_PATH);
  try {
    assert.equal(fstatfsType(ns), NSFS_MAGIC);
  } finally {
    close(ns);
  }
  assert.throws(() => fstatfsType(-1, { target: "/x" }), { op: "fstatfs", code: "EBADF" });
  assert.deepEqual(newFds(before), []);
});

Deno.test(`the architecture-dependent O_* flags are this kernel's (${Deno.build.arch})`, () => {
  using s = scratch();
  const before = openFds();
  // The other architecture's values, which must not pass these checks.
  const other = Deno.build.arch === "aarch64"
    ? { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 }
    : { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 };
  // O_DIRECTORY on a file: ENOTDIR. O_PATH keeps other flags from mattering.
  assert.throws(() => open(`${s.dir}/file`, O_PATH | O_DIRECTORY), { code: "ENOTDIR" });
  close(open(`${s.dir}/file`, O_PATH | other.O_DIRECTORY));
  // O_NOFOLLOW on a symlink: ELOOP; with O_PATH, the link itself.
  assert.throws(() => open(`${s.dir}/abs`, O_RDONLY | O_NOFOLLOW), { code: "ELOOP" });
  const link = open(`${s.dir}/up`, O_PATH | O_NOFOLLOW);
  const followed = open(`${s.dir}/up`, O_PATH | other.O_NOFOLLOW);
  try {
    assert.equal(fileInfo(link).mode & S_IFMT, S_IFLNK);
    assert.equal(fileInfo(followed).mode & S_IFMT, S_IFDIR);
  } finally {
    close(link);
    close(followed);
  }
  // The kernel shows the flags it kept, O_LARGEFILE included, in fdinfo.
  const dir = open(s.dir, O_RDONLY | O_DIRECTORY);
  const file = open(`${s.dir}/file`, O_RDONLY);
  try {
    assert.equal(fdFlags(dir) & O_DIRECTORY, O_DIRECTORY);
    assert.equal(fdFlags(file) & O_LARGEFILE, O_LARGEFILE);
  } finally {
    close(dir);
    close(file);
  }
  assert.deepEqual(newFds(before), []);
  assertSupportedArch();
  assert.throws(() => assertSupportedArch("riscv64"), {
    message: /^Unsupported architecture: riscv64 \(/,
  });
});
