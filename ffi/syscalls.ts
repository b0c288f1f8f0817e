/**
 * Typed syscall wrappers. Each one checks its strings, makes the call, reads
 * errno at once, and throws a {@linkcode MountError} naming the operation, the
 * errno and the paths involved. Every fd they open is close-on-exec.
 *
 * @module
 */

import {
  AT_FDCWD,
  CLONE_FS,
  CLONE_NEWNS,
  F_DUPFD_CLOEXEC,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_SIZE_VER0,
  NS_GET_NSTYPE,
  O_CLOEXEC,
  O_RDONLY,
  O_WRONLY,
  OPEN_TREE_CLONE,
} from "./constants.ts";
import { errno, libc, SYS_mount_setattr, SYS_move_mount, SYS_open_tree } from "./libc.ts";
import { MountError } from "./mount_error.ts";
import { faulted, seam, takeInjectedErrno } from "./seam.ts";

const encoder = new TextEncoder();
const NS_GET_NSTYPE_REQUEST = BigInt(NS_GET_NSTYPE);

/** The errno of the call that just failed, injected or real. */
function lastErrno(): number {
  return takeInjectedErrno() || errno();
}

/**
 * Checks that `value` can be passed to C as a path.
 *
 * @param value The path.
 * @param what What the path is, for the error message, such as
 * `"mount.source"`.
 * @throws {TypeError} If `value` is not a string, or holds a NUL byte, which
 * C would silently cut short.
 *
 * @example Reject a NUL byte
 * ```ts
 * import { assertPath } from "./syscalls.ts";
 * try {
 *   assertPath("/data\0/etc", "mount.source");
 * } catch (error) {
 *   console.log((error as TypeError).message);
 * }
 * ```
 */
export function assertPath(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Invalid ${what}: expected a string, got ${value === null ? "null" : typeof value}`,
    );
  }
  if (value.includes("\0")) {
    throw new TypeError(
      `Invalid ${what}: contains a NUL byte: ${JSON.stringify(value)}`,
    );
  }
}

/**
 * Encodes a path as a NUL-terminated C string.
 *
 * @param value The path.
 * @param what What the path is, for the error message.
 * @returns The bytes, ending in NUL.
 * @throws {TypeError} As {@linkcode assertPath} does.
 *
 * @example Encode a path
 * ```ts
 * import { cString } from "./syscalls.ts";
 * cString("/mnt", "target"); // Uint8Array [47, 109, 110, 116, 0]
 * ```
 */
export function cString(value: string, what: string): Uint8Array<ArrayBuffer> {
  assertPath(value, what);
  return encoder.encode(value + "\0");
}

// One reused buffer for one C string at a time. A wrapper fills it and hands
// it to libc in the same synchronous call; nothing runs in between, and a
// Worker has its own copy of this module. PATH_MAX bytes, NUL included.
const SCRATCH = new Uint8Array(4096);
// The empty path of the *at calls with AT_EMPTY_PATH; libc only reads it.
const EMPTY = new Uint8Array(1);

/**
 * Like {@linkcode cString}, but an ASCII path is copied into a reused buffer
 * instead of a new one: the hot paths (open, open_tree) then allocate
 * nothing. The buffer is valid until the next call; pass it to libc at once.
 * The checks are {@linkcode assertPath}'s, made first.
 */
function tempCString(value: string, what: string): Uint8Array<ArrayBuffer> {
  assertPath(value, what);
  const length = value.length;
  if (length === 0) return EMPTY;
  if (length < SCRATCH.length) {
    let i = 0;
    for (; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) break;
      SCRATCH[i] = code;
    }
    if (i === length) {
      SCRATCH[length] = 0;
      return SCRATCH;
    }
  }
  return encoder.encode(value + "\0");
}

/** Names for the paths in an error, when the call sees only an fd. */
export interface PathNames {
  /** The mount source, for the message. */
  source?: string;
  /** The mount target, for the message. */
  target?: string;
  /**
   * The name of the operation in the error and the fault seam, where the
   * call's own name says too little, such as `"mount(MS_BIND|MS_REMOUNT)"`.
   */
  op?: string;
}

/**
 * open(2), always with `O_CLOEXEC`.
 *
 * @param path The path to open.
 * @param flags `O_*` flags; `O_CLOEXEC` is added.
 * @returns The new fd.
 * @throws {MountError} With op `"open"` if the call fails.
 *
 * @example Open a path
 * ```ts
 * import { open, close } from "./syscalls.ts";
 * import { O_PATH } from "./constants.ts";
 * close(open("/", O_PATH));
 * ```
 */
export function open(path: string, flags: number): number {
  const cpath = tempCString(path, "path");
  const fd = faulted("open") ? -1 : libc("open").open(cpath, flags | O_CLOEXEC, 0);
  if (fd < 0) {
    const code = lastErrno();
    throw new MountError("open", { errno: code, source: path });
  }
  return fd;
}

/**
 * openat(2), always with `O_CLOEXEC`: `path` relative to `dirfd`.
 *
 * @param dirfd A directory fd (`O_PATH` will do), or `AT_FDCWD`.
 * @param path The path to open, relative to `dirfd`.
 * @param flags `O_*` flags; `O_CLOEXEC` is added.
 * @returns The new fd.
 * @throws {MountError} With op `"open"` if the call fails.
 *
 * @example Open a file of a process through its /proc directory
 * ```ts
 * import { close, open, openAt } from "./syscalls.ts";
 * import { O_DIRECTORY, O_PATH, O_RDONLY } from "./constants.ts";
 * const proc = open("/proc/self", O_PATH | O_DIRECTORY);
 * close(openAt(proc, "ns/user", O_RDONLY));
 * close(proc);
 * ```
 */
export function openAt(dirfd: number, path: string, flags: number): number {
  const cpath = tempCString(path, "path");
  const fd = faulted("open") ? -1 : libc("openat").openat(dirfd, cpath, flags | O_CLOEXEC, 0);
  if (fd < 0) {
    const code = lastErrno();
    throw new MountError("open", { errno: code, source: path });
  }
  return fd;
}

/**
 * close(2). Linux frees the fd even when close fails, so this never throws.
 *
 * @param fd The fd to close.
 * @returns 0, or the errno of a failed close (EBADF for a stale fd).
 *
 * @example Close an fd
 * ```ts
 * import { close } from "./syscalls.ts";
 * close(42);
 * ```
 */
export function close(fd: number): number {
  return libc("close").close(fd) < 0 ? errno() : 0;
}

/**
 * fcntl(fd, F_DUPFD_CLOEXEC, 0).
 *
 * @param fd The fd to duplicate.
 * @returns The new close-on-exec fd.
 * @throws {MountError} With op `"fcntl(F_DUPFD_CLOEXEC)"` if the call fails.
 *
 * @example Duplicate an fd
 * ```ts
 * import { dupCloexec } from "./syscalls.ts";
 * const copy = dupCloexec(0);
 * ```
 */
export function dupCloexec(fd: number): number {
  const op = "fcntl(F_DUPFD_CLOEXEC)";
  const copy = faulted(op) ? -1 : libc(op).fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    const code = lastErrno();
    throw new MountError(op, { errno: code });
  }
  return copy;
}

/**
 * The namespace type of an nsfs fd, through the `NS_GET_NSTYPE` ioctl.
 *
 * @param fd An fd from opening `/proc/PID/ns/*`.
 * @param path The path the fd was opened from, for the message.
 * @returns A `CLONE_NEW*` value.
 * @throws {MountError} With op `"ioctl(NS_GET_NSTYPE)"`; ENOTTY means the fd
 * is not a namespace.
 *
 * @example Check a user namespace fd
 * ```ts
 * import { namespaceType, open } from "./syscalls.ts";
 * import { CLONE_NEWUSER } from "./constants.ts";
 * const isUserns = namespaceType(open("/proc/self/ns/user", 0), "") === CLONE_NEWUSER;
 * ```
 */
export function namespaceType(fd: number, path: string): number {
  const op = "ioctl(NS_GET_NSTYPE)";
  const type = faulted(op) ? -1 : libc(op).ioctl(fd, NS_GET_NSTYPE_REQUEST);
  if (type < 0) {
    const code = lastErrno();
    throw new MountError(op, { errno: code, source: path });
  }
  return type;
}

/**
 * Writes `text` to an existing file in one write(2), as /proc files such as
 * `uid_map` require.
 *
 * @param path The file.
 * @param text What to write.
 * @param dirfd The directory `path` is relative to (default `AT_FDCWD`).
 * @throws {MountError} With op `"write"` (or `"open"`), naming the file in
 * `target`, if the kernel refuses the write or writes it short.
 *
 * @example Deny setgroups in a helper's user namespace
 * ```ts
 * import { writeOnce } from "./syscalls.ts";
 * writeOnce("/proc/1234/setgroups", "deny");
 * ```
 */
export function writeOnce(path: string, text: string, dirfd: number = AT_FDCWD): void {
  const cpath = tempCString(path, "path");
  const bytes = encoder.encode(text);
  const fd = faulted("open") ? -1 : libc("openat").openat(dirfd, cpath, O_WRONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    const code = lastErrno();
    throw new MountError("open", { errno: code, target: path });
  }
  try {
    const n = faulted("write") ? -1 : Number(libc("write").write(fd, bytes, BigInt(bytes.length)));
    if (n < 0) {
      const code = lastErrno();
      throw new MountError("write", { errno: code, target: path });
    }
    if (n !== bytes.length) {
      throw new MountError("write", {
        target: path,
        detail: `short write: ${n} of ${bytes.length} bytes`,
      });
    }
  } finally {
    close(fd);
  }
}

const decoder = new TextDecoder();

/**
 * Reads a small file whole, such as `/proc/PID/uid_map`. Deno's own file
 * APIs need `--allow-all` for anything under /proc; this needs only
 * `--allow-ffi`.
 *
 * @param path The file.
 * @returns Its text.
 * @throws {MountError} With op `"open"` or `"read"` if the kernel refuses.
 *
 * @example Read this process's uid map
 * ```ts
 * import { readText } from "./syscalls.ts";
 * console.log(readText("/proc/self/uid_map"));
 * ```
 */
export function readText(path: string): string {
  const fd = open(path, O_RDONLY);
  try {
    const chunks: Uint8Array[] = [];
    for (;;) {
      const chunk = new Uint8Array(4096);
      const n = faulted("read") ? -1 : Number(libc("read").read(fd, chunk, BigInt(chunk.length)));
      if (n < 0) {
        const code = lastErrno();
        throw new MountError("read", { errno: code, source: path });
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
    }
    let text = "";
    for (const chunk of chunks) text += decoder.decode(chunk, { stream: true });
    return text + decoder.decode();
  } finally {
    close(fd);
  }
}

/**
 * geteuid(2): the effective uid, without `--allow-sys`.
 *
 * @returns The effective uid in this process's user namespace.
 *
 * @example Am I root?
 * ```ts
 * import { geteuid } from "./syscalls.ts";
 * console.log(geteuid() === 0);
 * ```
 */
export function geteuid(): number {
  return libc("geteuid").geteuid();
}

/**
 * mount(2).
 *
 * @param source The source path, or `null`.
 * @param target The target path.
 * @param fstype The filesystem type, or `null`.
 * @param flags `MS_*` flags.
 * @param data Filesystem options, or `null`.
 * @param names The paths to name in an error, when `source` is a
 * `/proc/self/fd/N` stand-in.
 * @throws {MountError} With op `"mount"` if the call fails.
 *
 * @example Mount a tmpfs
 * ```ts
 * import { mount } from "./syscalls.ts";
 * mount("tmpfs", "/mnt", "tmpfs", 0, "size=1m");
 * ```
 */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
  names: PathNames = {},
): void {
  const csource = source === null ? null : cString(source, "mount source");
  const ctarget = cString(target, "mount target");
  const ctype = fstype === null ? null : cString(fstype, "filesystem type");
  const cdata = data === null ? null : cString(data, "mount data");
  const op = names.op ?? "mount";
  const ret = faulted(op)
    ? -1
    : libc("mount").mount(csource, ctarget, ctype, BigInt(flags >>> 0), cdata);
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError(op, {
      errno: code,
      source: names.source ?? source ?? undefined,
      target: names.target ?? target,
    });
  }
}

/**
 * umount2(2).
 *
 * @param target The mount point.
 * @param flags `MNT_*` flags, such as `MNT_DETACH`.
 * @throws {MountError} With op `"umount2"` if the call fails.
 *
 * @example Detach a mount
 * ```ts
 * import { umount2 } from "./syscalls.ts";
 * import { MNT_DETACH } from "./constants.ts";
 * umount2("/mnt", MNT_DETACH);
 * ```
 */
export function umount2(target: string, flags: number): void {
  const ctarget = cString(target, "unmount target");
  const ret = faulted("umount2") ? -1 : libc("umount2").umount2(ctarget, flags);
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError("umount2", { errno: code, target });
  }
}

/**
 * unshare(2) for the calling thread. With `CLONE_FS`, the thread gets its own
 * root, cwd and umask, which setns(2) into a mount namespace requires.
 *
 * @param flags `CLONE_*` flags.
 * @throws {MountError} With op `"unshare(CLONE_FS)"` (or `"unshare"`).
 *
 * @example Give this thread its own filesystem context
 * ```ts
 * import { unshare } from "./syscalls.ts";
 * import { CLONE_FS } from "./constants.ts";
 * unshare(CLONE_FS);
 * ```
 */
export function unshare(flags: number): void {
  const op = flags === CLONE_FS ? "unshare(CLONE_FS)" : "unshare";
  const ret = faulted(op) ? -1 : libc(op).unshare(flags);
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError(op, { errno: code });
  }
}

/**
 * setns(2): moves the calling thread into the namespace of `fd`.
 *
 * @param fd An fd of a namespace file, such as `/proc/PID/ns/mnt`.
 * @param nstype The expected `CLONE_NEW*` type, or 0 for any.
 * @param path The path the fd was opened from, for the message.
 * @throws {MountError} With op `"setns(CLONE_NEWNS)"` (or `"setns"`): EPERM
 * without `CAP_SYS_ADMIN` over the namespace's owner, EINVAL for another type
 * or a thread that shares its filesystem context.
 *
 * @example Join another mount namespace (from a thread of its own)
 * ```ts
 * import { open, setns, unshare } from "./syscalls.ts";
 * import { CLONE_FS, CLONE_NEWNS, O_RDONLY } from "./constants.ts";
 * unshare(CLONE_FS);
 * setns(open("/proc/1234/ns/mnt", O_RDONLY), CLONE_NEWNS, "/proc/1234/ns/mnt");
 * ```
 */
export function setns(fd: number, nstype: number, path: string): void {
  const op = nstype === CLONE_NEWNS ? "setns(CLONE_NEWNS)" : "setns";
  const ret = faulted(op) ? -1 : libc(op).setns(fd, nstype);
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError(op, { errno: code, target: path });
  }
}

/**
 * chdir(2) for the calling thread (or process, if it shares its cwd).
 *
 * @param path The new cwd.
 * @throws {MountError} With op `"chdir"`.
 *
 * @example Go to the root
 * ```ts
 * import { chdir } from "./syscalls.ts";
 * chdir("/");
 * ```
 */
export function chdir(path: string): void {
  const cpath = cString(path, "path");
  const ret = faulted("chdir") ? -1 : libc("chdir").chdir(cpath);
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError("chdir", { errno: code, target: path });
  }
}

/**
 * fchdir(2): makes the directory of `fd` the cwd, even one of another mount
 * namespace.
 *
 * @param fd An fd of a directory (`O_PATH` will do).
 * @param path What the fd is, for the message.
 * @throws {MountError} With op `"fchdir"`.
 *
 * @example Resolve relative paths from a saved directory
 * ```ts
 * import { fchdir, open } from "./syscalls.ts";
 * import { O_PATH } from "./constants.ts";
 * fchdir(open("/proc", O_PATH), "/proc");
 * ```
 */
export function fchdir(fd: number, path?: string): void {
  const ret = faulted("fchdir") ? -1 : libc("fchdir").fchdir(fd);
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError("fchdir", { errno: code, target: path });
  }
}

/**
 * readlinkat(2): the target of a symbolic link, such as
 * `/proc/thread-self/ns/mnt`.
 *
 * @param dirfd The directory `path` is relative to, or `AT_FDCWD`.
 * @param path The link.
 * @returns Its target.
 * @throws {MountError} With op `"readlinkat"`.
 *
 * @example Name this thread's mount namespace
 * ```ts
 * import { readlinkAt } from "./syscalls.ts";
 * import { AT_FDCWD } from "./constants.ts";
 * readlinkAt(AT_FDCWD, "/proc/thread-self/ns/mnt"); // "mnt:[4026531841]"
 * ```
 */
export function readlinkAt(dirfd: number, path: string): string {
  const cpath = cString(path, "path");
  const buffer = new Uint8Array(4096);
  const n = faulted("readlinkat")
    ? -1
    : Number(libc("readlinkat").readlinkat(dirfd, cpath, buffer, BigInt(buffer.length)));
  if (n < 0) {
    const code = lastErrno();
    throw new MountError("readlinkat", { errno: code, source: path });
  }
  return decoder.decode(buffer.subarray(0, n));
}

// struct statfs is 120 bytes on x86_64 and aarch64; f_flags is its 11th word.
const statfsWords = new BigUint64Array(16);
const STATFS_F_FLAGS = 10;

/**
 * fstatfs(2): the `f_flags` of the mount an fd is on (`ST_*` bits).
 *
 * @param fd Any fd, an `O_PATH` one or a detached mount included.
 * @param names The paths to name in an error.
 * @returns The `ST_*` flags of the mount.
 * @throws {MountError} With op `"fstatfs"`.
 *
 * @example Is a mount read-only?
 * ```ts
 * import { fstatfsFlags, open } from "./syscalls.ts";
 * import { O_PATH, ST_RDONLY } from "./constants.ts";
 * const readOnly = (fstatfsFlags(open("/usr", O_PATH)) & ST_RDONLY) !== 0;
 * ```
 */
export function fstatfsFlags(fd: number, names: PathNames = {}): number {
  statfsWords.fill(0n);
  const ret = faulted("fstatfs")
    ? -1
    : libc("fstatfs").fstatfs(fd, new Uint8Array(statfsWords.buffer));
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError("fstatfs", { errno: code, source: names.source, target: names.target });
  }
  return Number(statfsWords[STATFS_F_FLAGS]);
}

/**
 * open_tree(2), through glibc's wrapper or `syscall(2)`.
 *
 * @param dirfd The directory fd `path` is relative to, or `AT_FDCWD`.
 * @param path The path of the tree.
 * @param flags `OPEN_TREE_*` and `AT_*` flags.
 * @returns The new fd: a detached mount with `OPEN_TREE_CLONE`.
 * @throws {MountError} With op `"open_tree(OPEN_TREE_CLONE)"` (or
 * `"open_tree"`) if the call fails.
 *
 * @example Clone a tree
 * ```ts
 * import { openTree } from "./syscalls.ts";
 * import { AT_FDCWD, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE } from "./constants.ts";
 * const fd = openTree(AT_FDCWD, "/data", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
 * ```
 */
export function openTree(dirfd: number, path: string, flags: number): number {
  const op = flags & OPEN_TREE_CLONE ? "open_tree(OPEN_TREE_CLONE)" : "open_tree";
  const cpath = tempCString(path, "path");
  let fd: number;
  if (faulted(op)) {
    fd = -1;
  } else {
    const lib = libc("open_tree");
    fd = lib.open_tree && !seam.rawSyscalls ? lib.open_tree(dirfd, cpath, flags) : Number(
      rawSyscall(lib.syscall_open_tree, "open_tree")(
        SYS_open_tree,
        dirfd,
        cpath,
        flags,
      ),
    );
  }
  if (fd < 0) {
    const code = lastErrno();
    throw new MountError(op, { errno: code, source: path });
  }
  return fd;
}

/**
 * move_mount(2), through glibc's wrapper or `syscall(2)`.
 *
 * @param fromDirfd The source dirfd (the mount fd with an empty path).
 * @param fromPath The source path.
 * @param toDirfd The target dirfd, or `AT_FDCWD`.
 * @param toPath The target path.
 * @param flags `MOVE_MOUNT_*` flags.
 * @param names The paths to name in an error.
 * @throws {MountError} With op `"move_mount"` if the call fails.
 *
 * @example Attach a detached mount
 * ```ts
 * import { moveMount, openTree } from "./syscalls.ts";
 * import { AT_FDCWD, MOVE_MOUNT_F_EMPTY_PATH, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE } from "./constants.ts";
 * const fd = openTree(AT_FDCWD, "/srv/data", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
 * moveMount(fd, "", AT_FDCWD, "/mnt", MOVE_MOUNT_F_EMPTY_PATH);
 * ```
 */
export function moveMount(
  fromDirfd: number,
  fromPath: string,
  toDirfd: number,
  toPath: string,
  flags: number,
  names: PathNames = {},
): void {
  const cfrom = cString(fromPath, "source path");
  const cto = cString(toPath, "target path");
  let ret: number;
  if (faulted("move_mount")) {
    ret = -1;
  } else {
    const lib = libc("move_mount");
    ret = lib.move_mount && !seam.rawSyscalls
      ? lib.move_mount(fromDirfd, cfrom, toDirfd, cto, flags)
      : Number(
        rawSyscall(lib.syscall_move_mount, "move_mount")(
          SYS_move_mount,
          fromDirfd,
          cfrom,
          toDirfd,
          cto,
          flags,
        ),
      );
  }
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError("move_mount", {
      errno: code,
      source: names.source ?? (fromPath || undefined),
      target: names.target ?? toPath,
    });
  }
}

/** The fields of `struct mount_attr`. */
export interface MountAttrStruct {
  /** `MOUNT_ATTR_*` bits to set. */
  attrSet: number;
  /** `MOUNT_ATTR_*` bits to clear. */
  attrClr?: number;
  /** One `MS_*` propagation type, or 0. */
  propagation?: number;
  /** The user namespace fd for `MOUNT_ATTR_IDMAP`. */
  usernsFd?: number;
}

// One struct, reused: a call fills it and the kernel copies it at once. Its
// four fields are u64s holding u32 values: only their low halves are written,
// through a u32 view, so that filling it makes no BigInts.
const attrHalves = new Uint32Array(MOUNT_ATTR_SIZE_VER0 / 4);
const attrBytes = new Uint8Array(attrHalves.buffer);
const LOW = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 0 : 1;
const ATTR_SIZE = BigInt(MOUNT_ATTR_SIZE_VER0);

/**
 * mount_setattr(2), through glibc's wrapper or `syscall(2)`.
 *
 * @param dirfd The mount fd (with an empty path and `AT_EMPTY_PATH`).
 * @param path The path, relative to `dirfd`.
 * @param flags `AT_*` flags, such as `AT_EMPTY_PATH | AT_RECURSIVE`.
 * @param attr The attributes to set and clear.
 * @param names The paths to name in an error.
 * @throws {MountError} With op `"mount_setattr"` if the call fails.
 *
 * @example Make a detached mount read-only
 * ```ts
 * import { mountSetattr, openTree } from "./syscalls.ts";
 * import { AT_EMPTY_PATH, AT_FDCWD, MOUNT_ATTR_RDONLY, OPEN_TREE_CLONE } from "./constants.ts";
 * const fd = openTree(AT_FDCWD, "/srv/data", OPEN_TREE_CLONE);
 * mountSetattr(fd, "", AT_EMPTY_PATH, { attrSet: MOUNT_ATTR_RDONLY });
 * ```
 */
export function mountSetattr(
  dirfd: number,
  path: string,
  flags: number,
  attr: MountAttrStruct,
  names: PathNames = {},
): void {
  const op = names.op ??
    (attr.attrSet & MOUNT_ATTR_IDMAP ? "mount_setattr(MOUNT_ATTR_IDMAP)" : "mount_setattr");
  const cpath = tempCString(path, "path");
  attrHalves[LOW] = attr.attrSet;
  attrHalves[2 + LOW] = attr.attrClr ?? 0;
  attrHalves[4 + LOW] = attr.propagation ?? 0;
  attrHalves[6 + LOW] = attr.usernsFd ?? 0;
  let ret: number;
  if (faulted(op)) {
    ret = -1;
  } else {
    const lib = libc("mount_setattr");
    ret = lib.mount_setattr && !seam.rawSyscalls
      ? lib.mount_setattr(dirfd, cpath, flags, attrBytes, ATTR_SIZE)
      : Number(
        rawSyscall(lib.syscall_mount_setattr, "mount_setattr")(
          SYS_mount_setattr,
          dirfd,
          cpath,
          flags,
          attrBytes,
          ATTR_SIZE,
        ),
      );
  }
  if (ret < 0) {
    const code = lastErrno();
    throw new MountError(op, {
      errno: code,
      source: names.source ?? (path || undefined),
      target: names.target,
    });
  }
}

function rawSyscall<T>(fn: T | null, name: string): T {
  if (fn === null) {
    throw new MountError(name, {
      detail: "this libc has neither a wrapper nor syscall(2)",
    });
  }
  return fn;
}
