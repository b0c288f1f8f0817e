/**
 * Typed syscall wrappers of files, fds and namespaces. Each one checks its
 * strings, makes the call, and on failure reads errno at once and throws a
 * {@linkcode MountError} naming the operation, the errno and the paths
 * involved (`check` in `call.ts`). Every fd they return is close-on-exec.
 * The new mount API and `statx` are in `mount_api.ts`.
 *
 * @module
 */

import {
  AT_FDCWD,
  CLONE_FS,
  CLONE_NEWNS,
  F_DUPFD_CLOEXEC,
  NS_GET_NSTYPE,
  NS_GET_USERNS,
  O_CLOEXEC,
  O_RDONLY,
  O_WRONLY,
} from "./constants.ts";
import { check, type CPath, cString, LOW, pathText, tempCString } from "./call.ts";
import { errnoView, libc } from "./libc.ts";
import { MountError } from "./mount_error.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NS_GET_NSTYPE_REQUEST = BigInt(NS_GET_NSTYPE);
const NS_GET_USERNS_REQUEST = BigInt(NS_GET_USERNS);

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
 * @param path The path to open, relative to `dirfd`: a string, or bytes.
 * @param flags `O_*` flags; `O_CLOEXEC` is added.
 * @param mode The permission bits of a file that `O_CREAT` creates.
 * @returns The new fd.
 * @throws {MountError} With op `"open"` if the call fails.
 */
export function openAt(dirfd: number, path: CPath, flags: number, mode: number = 0): number {
  const cpath = tempCString(path, "path");
  const fd = libc("openat").openat(dirfd, cpath, flags | O_CLOEXEC, mode);
  return fd >= 0 ? fd : check(fd, errnoView[0], "open", pathText(path));
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
export function mkdirat(dirfd: number, path: CPath, mode: number): void {
  const cpath = tempCString(path, "path");
  const result = libc("mkdirat").mkdirat(dirfd, cpath, mode);
  if (result < 0) check(result, errnoView[0], "mkdirat", undefined, pathText(path));
}

/**
 * fchownat(2): sets the owner of `path` relative to `dirfd`, or, with an
 * empty path and `AT_EMPTY_PATH`, of `dirfd` itself (an `O_PATH` fd will do).
 *
 * @param dirfd A directory fd, or the fd to change with `AT_EMPTY_PATH`.
 * @param path The path, relative to `dirfd`, or `""`.
 * @param uid The new owner.
 * @param gid The new group.
 * @param flags `AT_EMPTY_PATH`, `AT_SYMLINK_NOFOLLOW`.
 * @throws {MountError} With op `"fchownat"`.
 */
export function fchownat(
  dirfd: number,
  path: CPath,
  uid: number,
  gid: number,
  flags: number,
): void {
  const cpath = tempCString(path, "path");
  const result = libc("fchownat").fchownat(dirfd, cpath, uid, gid, flags);
  if (result < 0) check(result, errnoView[0], "fchownat", undefined, pathText(path));
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
 * The user namespace that owns a namespace, through the `NS_GET_USERNS`
 * ioctl.
 *
 * @param fd An fd from opening `/proc/PID/ns/*` (not an `O_PATH` one).
 * @param path The path the fd was opened from, for the message.
 * @returns A new close-on-exec fd of the owning user namespace.
 * @throws {MountError} With op `"ioctl(NS_GET_USERNS)"`; EPERM when the
 * owner is outside the caller's user namespace.
 */
export function namespaceOwner(fd: number, path: string): number {
  const op = "ioctl(NS_GET_USERNS)";
  return check(libc(op).ioctl(fd, NS_GET_USERNS_REQUEST), errnoView[0], op, path);
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
 * umount2(2).
 *
 * @param target The mount point.
 * @param flags `MNT_*` flags, such as `MNT_DETACH`, and `UMOUNT_NOFOLLOW`.
 * @throws {MountError} With op `"umount2"` if the call fails.
 */
export function umount2(target: CPath, flags: number): void {
  const ctarget = tempCString(target, "unmount target");
  const result = libc("umount2").umount2(ctarget, flags);
  if (result < 0) check(result, errnoView[0], "umount2", undefined, pathText(target));
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
  return decoder.decode(readlinkAtBytes(dirfd, path));
}

/**
 * readlinkat(2): the target of a symbolic link, as its bytes, which need not
 * be UTF-8.
 *
 * @param dirfd A directory fd, or the link's own `O_PATH|O_NOFOLLOW` fd.
 * @param path The link, relative to `dirfd`; `""` for `dirfd` itself.
 * @returns The target's bytes.
 * @throws {MountError} With op `"readlinkat"`.
 */
export function readlinkAtBytes(dirfd: number, path: string): Uint8Array {
  const cpath = cString(path, "path");
  const buffer = new Uint8Array(4096);
  const size = BigInt(buffer.length);
  const n = check(
    Number(libc("readlinkat").readlinkat(dirfd, cpath, buffer, size)),
    errnoView[0],
    "readlinkat",
    path,
  );
  return buffer.slice(0, n);
}
