/**
 * Typed syscall wrappers. Each one checks its strings, makes the call, and
 * on failure reads errno at once and throws a {@linkcode MountError} naming
 * the operation, the errno and the paths involved ({@linkcode check}). Every
 * fd they return is close-on-exec.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
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
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  STATX_MNT_ID,
  STATX_MODE,
  STATX_TYPE,
} from "./constants.ts";
import { errnoView, libc } from "./libc.ts";
import { MountError } from "./mount_error.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NS_GET_NSTYPE_REQUEST = BigInt(NS_GET_NSTYPE);
// The index of the low u32 of a u64 in a Uint32Array over a C struct.
const LOW = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 0 : 1;

/**
 * The one check after every call: returns `result`, or, for a negative one,
 * throws with `code`, the errno its caller read at once after the call, in
 * its argument list: `check(call(...), errnoView[0], ...)`. No function may
 * run between the two, this one included: a function's entry may handle V8
 * interrupts, a GC among them, which can change errno.
 *
 * @param result What the call returned: -1 with errno set on failure.
 * @param code errno, read right after the call.
 * @param op The operation, for the error.
 * @param source The source path, for the error.
 * @param target The target path, for the error.
 * @returns `result`, when it is not negative.
 * @throws {MountError} With `op` and the errno, when `result` is negative.
 */
function check(
  result: number,
  code: number,
  op: string,
  source?: string,
  target?: string,
): number {
  if (result >= 0) return result;
  throw new MountError(op, { errno: code, source, target });
}

/**
 * Checks that `value` can be passed to C as a path.
 *
 * @param value The path.
 * @param what What the path is, for the error message, such as
 * `"mount.source"`.
 * @throws {TypeError} If `value` is not a string, or holds a NUL byte, which
 * C would silently cut short.
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
 */
export function cString(value: string, what: string): Uint8Array<ArrayBuffer> {
  assertPath(value, what);
  // The empty path of the *at calls with AT_EMPTY_PATH: one shared NUL.
  if (value.length === 0) return EMPTY;
  return encoder.encode(value + "\0");
}

// One reused buffer for one C string at a time. A wrapper fills it and hands
// it to libc in the same synchronous call; nothing runs in between, and a
// Worker has its own copy of this module. PATH_MAX bytes, NUL included.
const SCRATCH = new Uint8Array(4096);
// The empty path of the *at calls with AT_EMPTY_PATH; libc only reads it.
const EMPTY = new Uint8Array(1);
// The path whose bytes SCRATCH holds, if any.
let scratchPath: string | undefined;

/**
 * Like {@linkcode cString}, but an ASCII path is copied into a reused buffer
 * instead of a new one: the hot paths (open, open_tree) then allocate
 * nothing. The buffer is valid until the next call; pass it to libc at once.
 * The checks are {@linkcode assertPath}'s, made first.
 */
function tempCString(value: string, what: string): Uint8Array<ArrayBuffer> {
  // The same path as the last call's (a runtime opens one source again and
  // again): checked then, and still in the buffer.
  if (value === scratchPath) return SCRATCH;
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
      scratchPath = value;
      return SCRATCH;
    }
    scratchPath = undefined;
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
   * The name of the operation in the error, where the call's own name says
   * too little, such as `"mount(MS_BIND|MS_REMOUNT)"`.
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
 */
export function open(path: string, flags: number): number {
  const cpath = tempCString(path, "path");
  return check(libc("open").open(cpath, flags | O_CLOEXEC, 0), errnoView[0], "open", path);
}

/**
 * openat(2), always with `O_CLOEXEC`: `path` relative to `dirfd`.
 *
 * @param dirfd A directory fd (`O_PATH` will do), or `AT_FDCWD`.
 * @param path The path to open, relative to `dirfd`.
 * @param flags `O_*` flags; `O_CLOEXEC` is added.
 * @param mode The permission bits of a file that `O_CREAT` creates.
 * @returns The new fd.
 * @throws {MountError} With op `"open"` if the call fails.
 */
export function openAt(dirfd: number, path: string, flags: number, mode: number = 0): number {
  const cpath = tempCString(path, "path");
  return check(
    libc("openat").openat(dirfd, cpath, flags | O_CLOEXEC, mode),
    errnoView[0],
    "open",
    path,
  );
}

// One struct open_how { u64 flags; u64 mode; u64 resolve; }, reused and
// filled through its low u32 halves, as the mount_attr below.
const howHalves = new Uint32Array(6);
const howBytes = new Uint8Array(howHalves.buffer);
const HOW_SIZE = BigInt(howBytes.length);

/**
 * openat2(2) (Linux 5.6), always with `O_CLOEXEC`: `path` relative to
 * `dirfd`, resolved as `resolve` says.
 *
 * @param dirfd A directory fd (`O_PATH` will do), or `AT_FDCWD`.
 * @param path The path to open, relative to `dirfd`.
 * @param flags `O_*` flags; `O_CLOEXEC` is added. openat2 refuses unknown
 * bits (EINVAL); the mode is 0, so create files with {@linkcode openAt}.
 * @param resolve `RESOLVE_*` flags, such as `RESOLVE_IN_ROOT`.
 * @returns The new fd.
 * @throws {MountError} With op `"openat2"`: code `ENOSYS` before Linux 5.6,
 * `ENOSYS` or `EPERM` from a seccomp filter that refuses it, `EXDEV` or
 * `ELOOP` when `resolve` forbids the way the path goes.
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  const cpath = tempCString(path, "path");
  howHalves[LOW] = flags | O_CLOEXEC;
  howHalves[4 + LOW] = resolve;
  return check(
    libc("openat2").openat2(dirfd, cpath, howBytes, HOW_SIZE),
    errnoView[0],
    "openat2",
    path,
  );
}

/**
 * mkdirat(2): makes a directory, `path` relative to `dirfd`.
 *
 * @param dirfd A directory fd (`O_PATH` will do), or `AT_FDCWD`.
 * @param path The directory to make, relative to `dirfd`.
 * @param mode Its permission bits, less the umask.
 * @throws {MountError} With op `"mkdirat"`, naming `path` as the target:
 * `EEXIST` if something is there already.
 */
export function mkdirat(dirfd: number, path: string, mode: number): void {
  const cpath = tempCString(path, "path");
  check(libc("mkdirat").mkdirat(dirfd, cpath, mode), errnoView[0], "mkdirat", undefined, path);
}

/**
 * close(2). Linux frees the fd even when close fails, so this never throws.
 *
 * @param fd The fd to close.
 * @returns 0, or the errno of a failed close (EBADF for a stale fd).
 */
export function close(fd: number): number {
  return libc("close").close(fd) < 0 ? errnoView[0] : 0;
}

/**
 * fcntl(fd, F_DUPFD_CLOEXEC, 0).
 *
 * @param fd The fd to duplicate.
 * @returns The new close-on-exec fd.
 * @throws {MountError} With op `"fcntl(F_DUPFD_CLOEXEC)"` if the call fails.
 */
export function dupCloexec(fd: number): number {
  const op = "fcntl(F_DUPFD_CLOEXEC)";
  return check(libc(op).fcntl(fd, F_DUPFD_CLOEXEC, 0), errnoView[0], op);
}

/**
 * The namespace type of an nsfs fd, through the `NS_GET_NSTYPE` ioctl.
 *
 * @param fd An fd from opening `/proc/PID/ns/*` (not an `O_PATH` one).
 * @param path The path the fd was opened from, for the message.
 * @returns A `CLONE_NEW*` value.
 * @throws {MountError} With op `"ioctl(NS_GET_NSTYPE)"`; ENOTTY means the fd
 * is not a namespace.
 */
export function namespaceType(fd: number, path: string): number {
  const op = "ioctl(NS_GET_NSTYPE)";
  return check(libc(op).ioctl(fd, NS_GET_NSTYPE_REQUEST), errnoView[0], op, path);
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
 */
export function writeOnce(path: string, text: string, dirfd: number = AT_FDCWD): void {
  const cpath = tempCString(path, "path");
  const fd = check(
    libc("openat").openat(dirfd, cpath, O_WRONLY | O_CLOEXEC, 0),
    errnoView[0],
    "open",
    undefined,
    path,
  );
  try {
    writeText(fd, text, path);
  } finally {
    close(fd);
  }
}

/**
 * Writes `text` to an open file in one write(2), as /proc files such as
 * `uid_map` require.
 *
 * @param fd The file, open for writing.
 * @param text What to write.
 * @param path The file's name, for the message.
 * @throws {MountError} With op `"write"`, naming the file in `target`, if the
 * kernel refuses the write or writes it short.
 */
export function writeText(fd: number, text: string, path: string): void {
  const bytes = encoder.encode(text);
  const n = check(
    Number(libc("write").write(fd, bytes, BigInt(bytes.length))),
    errnoView[0],
    "write",
    undefined,
    path,
  );
  if (n !== bytes.length) {
    throw new MountError("write", {
      target: path,
      detail: `short write: ${n} of ${bytes.length} bytes`,
    });
  }
}

/**
 * Reads a small file whole, such as `/proc/PID/uid_map`. Deno's own file
 * APIs need `--allow-all` for anything under /proc; this needs only
 * `--allow-ffi`.
 *
 * @param path The file.
 * @returns Its text.
 * @throws {MountError} With op `"open"` or `"read"` if the kernel refuses.
 */
export function readText(path: string): string {
  const fd = open(path, O_RDONLY);
  try {
    const lib = libc("read");
    let text = "";
    for (;;) {
      const chunk = new Uint8Array(4096);
      const n = check(
        Number(lib.read(fd, chunk, BigInt(chunk.length))),
        errnoView[0],
        "read",
        path,
      );
      if (n === 0) return text + decoder.decode();
      text += decoder.decode(chunk.subarray(0, n), { stream: true });
    }
  } finally {
    close(fd);
  }
}

/**
 * geteuid(2): the effective uid, without `--allow-sys`.
 *
 * @returns The effective uid in this process's user namespace.
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
 * @param names The op and paths to name in an error, when `source` is a
 * `/proc/self/fd/N` stand-in.
 * @throws {MountError} With op `"mount"` (or `names.op`) if the call fails.
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
  check(
    libc("mount").mount(csource, ctarget, ctype, BigInt(flags >>> 0), cdata),
    errnoView[0],
    names.op ?? "mount",
    names.source ?? source ?? undefined,
    names.target ?? target,
  );
}

/**
 * umount2(2).
 *
 * @param target The mount point.
 * @param flags `MNT_*` flags, such as `MNT_DETACH`, and `UMOUNT_NOFOLLOW`.
 * @throws {MountError} With op `"umount2"` if the call fails.
 */
export function umount2(target: string, flags: number): void {
  const ctarget = cString(target, "unmount target");
  check(libc("umount2").umount2(ctarget, flags), errnoView[0], "umount2", undefined, target);
}

/**
 * unshare(2) for the calling thread. With `CLONE_FS`, the thread gets its own
 * root, cwd and umask, which setns(2) into a mount namespace requires.
 *
 * @param flags `CLONE_*` flags.
 * @throws {MountError} With op `"unshare(CLONE_FS)"` (or `"unshare"`).
 */
export function unshare(flags: number): void {
  const op = flags === CLONE_FS ? "unshare(CLONE_FS)" : "unshare";
  check(libc(op).unshare(flags), errnoView[0], op);
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
 */
export function setns(fd: number, nstype: number, path: string): void {
  const op = nstype === CLONE_NEWNS ? "setns(CLONE_NEWNS)" : "setns";
  check(libc(op).setns(fd, nstype), errnoView[0], op, undefined, path);
}

/**
 * chdir(2) for the calling thread (or process, if it shares its cwd).
 *
 * @param path The new cwd.
 * @throws {MountError} With op `"chdir"`.
 */
export function chdir(path: string): void {
  const cpath = cString(path, "path");
  check(libc("chdir").chdir(cpath), errnoView[0], "chdir", undefined, path);
}

/**
 * fchdir(2): makes the directory of `fd` the cwd, even one of another mount
 * namespace.
 *
 * @param fd An fd of a directory (`O_PATH` will do).
 * @param path What the fd is, for the message.
 * @throws {MountError} With op `"fchdir"`.
 */
export function fchdir(fd: number, path?: string): void {
  check(libc("fchdir").fchdir(fd), errnoView[0], "fchdir", undefined, path);
}

/**
 * readlinkat(2): the target of a symbolic link, such as
 * `/proc/thread-self/ns/mnt`.
 *
 * @param dirfd The directory `path` is relative to, or `AT_FDCWD`.
 * @param path The link.
 * @returns Its target.
 * @throws {MountError} With op `"readlinkat"`.
 */
export function readlinkAt(dirfd: number, path: string): string {
  const cpath = cString(path, "path");
  const buffer = new Uint8Array(4096);
  const size = BigInt(buffer.length);
  const n = check(
    Number(libc("readlinkat").readlinkat(dirfd, cpath, buffer, size)),
    errnoView[0],
    "readlinkat",
    path,
  );
  return decoder.decode(buffer.subarray(0, n));
}

// struct statfs is 120 bytes on x86_64 and aarch64: f_type is its 1st word,
// f_flags its 11th.
const statfsWords = new BigUint64Array(16);
const statfsBytes = new Uint8Array(statfsWords.buffer);

/** fstatfs(2) into `statfsWords`. */
function fstatfs(fd: number, names: PathNames): BigUint64Array {
  check(
    libc("fstatfs").fstatfs(fd, statfsBytes),
    errnoView[0],
    "fstatfs",
    names.source,
    names.target,
  );
  return statfsWords;
}

/**
 * fstatfs(2): the `f_flags` of the mount an fd is on (`ST_*` bits).
 *
 * @param fd Any fd, an `O_PATH` one or a detached mount included.
 * @param names The paths to name in an error.
 * @returns The `ST_*` flags of the mount.
 * @throws {MountError} With op `"fstatfs"`.
 */
export function fstatfsFlags(fd: number, names: PathNames = {}): number {
  return Number(fstatfs(fd, names)[10]);
}

/**
 * fstatfs(2): the `f_type` of the filesystem an fd is on, its magic number.
 *
 * @param fd Any fd, an `O_PATH` one or a detached mount included.
 * @param names The paths to name in an error.
 * @returns The magic number, such as `PROC_SUPER_MAGIC`.
 * @throws {MountError} With op `"fstatfs"`.
 */
export function fstatfsType(fd: number, names: PathNames = {}): number {
  return Number(fstatfs(fd, names)[0]);
}

// struct statx is 256 bytes, the same on every architecture: stx_mask is the
// u32 at byte 0, stx_mode the u16 at 28, stx_mnt_id the u64 at 144.
const statxWords = new Uint32Array(64);
const statxShorts = new Uint16Array(statxWords.buffer);
const statxBytes = new Uint8Array(statxWords.buffer);
const STATX_WANTED = STATX_TYPE | STATX_MODE | STATX_MNT_ID;

/** What {@linkcode fileInfo} reports of a file. */
export interface FileInfo {
  /** The type and permission bits (`S_IFMT` and below). */
  mode: number;
  /** The id of the mount the file is on, as in mountinfo; -1 before Linux 5.8. */
  mountId: number;
}

/**
 * statx(2): the type, mode and mount id of a file, without following a
 * symbolic link at the end of the path when `flags` says so.
 *
 * @param fd A directory fd, or the file's own fd (an `O_PATH` one will do)
 * with an empty `path` and `AT_EMPTY_PATH`.
 * @param path The file, relative to `fd` (default: `fd` itself).
 * @param flags `AT_*` flags, such as `AT_SYMLINK_NOFOLLOW` (default
 * `AT_EMPTY_PATH`).
 * @returns The file's mode and mount id.
 * @throws {MountError} With op `"statx"`.
 */
export function fileInfo(fd: number, path: string = "", flags: number = AT_EMPTY_PATH): FileInfo {
  const cpath = tempCString(path, "path");
  check(
    libc("statx").statx(fd, cpath, flags, STATX_WANTED, statxBytes),
    errnoView[0],
    "statx",
    path || undefined,
  );
  const mode = statxShorts[14];
  const mountId = statxWords[0] & STATX_MNT_ID
    ? statxWords[36 + LOW] + statxWords[37 - LOW] * 2 ** 32
    : -1;
  return { mode, mountId };
}

/**
 * open_tree(2), always with `OPEN_TREE_CLOEXEC`.
 *
 * @param dirfd The directory fd `path` is relative to, or `AT_FDCWD`.
 * @param path The path of the tree.
 * @param flags `OPEN_TREE_*` and `AT_*` flags; `OPEN_TREE_CLOEXEC` is added.
 * @returns The new fd: a detached mount with `OPEN_TREE_CLONE`.
 * @throws {MountError} With op `"open_tree(OPEN_TREE_CLONE)"` (or
 * `"open_tree"`) if the call fails.
 */
export function openTree(dirfd: number, path: string, flags: number): number {
  const op = flags & OPEN_TREE_CLONE ? "open_tree(OPEN_TREE_CLONE)" : "open_tree";
  const cpath = tempCString(path, "path");
  return check(
    libc("open_tree").open_tree(dirfd, cpath, flags | OPEN_TREE_CLOEXEC),
    errnoView[0],
    op,
    path,
  );
}

/**
 * move_mount(2).
 *
 * @param fromDirfd The source dirfd (the mount fd with an empty path).
 * @param fromPath The source path.
 * @param toDirfd The target dirfd, or `AT_FDCWD`.
 * @param toPath The target path.
 * @param flags `MOVE_MOUNT_*` flags.
 * @param names The paths to name in an error.
 * @throws {MountError} With op `"move_mount"` if the call fails.
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
  check(
    libc("move_mount").move_mount(fromDirfd, cfrom, toDirfd, cto, flags),
    errnoView[0],
    "move_mount",
    names.source ?? (fromPath || undefined),
    names.target ?? toPath,
  );
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
const ATTR_SIZE = BigInt(MOUNT_ATTR_SIZE_VER0);

/**
 * mount_setattr(2).
 *
 * @param dirfd The mount fd (with an empty path and `AT_EMPTY_PATH`).
 * @param path The path, relative to `dirfd`.
 * @param flags `AT_*` flags, such as `AT_EMPTY_PATH | AT_RECURSIVE`.
 * @param attr The attributes to set and clear.
 * @param names The op and paths to name in an error.
 * @throws {MountError} With op `"mount_setattr"` (`"mount_setattr(MOUNT_ATTR_IDMAP)"`
 * for an id mapping, or `names.op`) if the call fails.
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
  check(
    libc("mount_setattr").mount_setattr(dirfd, cpath, flags, attrBytes, ATTR_SIZE),
    errnoView[0],
    op,
    names.source ?? (path || undefined),
    names.target,
  );
}
