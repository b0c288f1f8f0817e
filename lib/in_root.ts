/**
 * A path inside a root, resolved as if the root were `/`, never leading
 * outside it: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, or, where
 * openat2 is missing or refused, a component walk that means the same, byte
 * for byte. The walk also creates what is missing (runc's answer for a
 * missing mount point, dangling symbolic links included), and names the
 * mount point a path leads to (for unmount).
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_WRONLY,
  PROC_SUPER_MAGIC,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
} from "../ffi/constants.ts";
import { type CPath, pathText } from "../ffi/call.ts";
import { errnoValue } from "../ffi/errno.ts";
import { fileInfo, fstatfsType } from "../ffi/mount_api.ts";
import { MountError } from "../ffi/mount_error.ts";
import {
  close,
  dupCloexec,
  fchownat,
  mkdirat,
  openAt,
  openat2,
  readlinkAtBytes,
} from "../ffi/syscalls.ts";

/** The longest chain of symbolic links a lookup follows, as the kernel's. */
const MAX_LINKS = 40;
/** How often openat2 is retried when the kernel saw a rename race (EAGAIN). */
const MAX_RETRIES = 32;
/** PATH_MAX: a path of this many bytes or more is ENAMETOOLONG, as for openat2. */
const PATH_MAX = 4096;
const SLASH = 0x2f;
const DOT = 0x2e;
const encoder = new TextEncoder();

/** What a walk does beyond resolving. */
export interface WalkOptions {
  /** Open a final symbolic link itself, not what it names. */
  noFollow?: boolean;
  /**
   * Create what is missing: parent directories (0755), then the last entry,
   * a directory or an empty file (0644) as this says. A dangling symbolic
   * link on the way is followed, inside the root, and what it names made.
   */
  create?: () => "directory" | "file";
  /** The owner of what `create` makes (default: the caller). */
  owner?: { uid: number; gid: number };
}

/** Where a walk ended: the fd, and the names of the directories it went through. */
interface Walked {
  fd: number;
  /** The components from the root to the entry, symbolic links resolved. */
  names: Uint8Array[];
}

/**
 * The components of a path's bytes: empty ones dropped, but a trailing
 * slash kept as a final `.`, which asks that what comes before it be a
 * directory (as the kernel asks).
 */
function split(path: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== SLASH) continue;
    if (i > start) parts.push(path.subarray(start, i));
    start = i + 1;
  }
  if (path.length > 0 && path[path.length - 1] === SLASH && parts.length > 0) {
    parts.push(Uint8Array.of(DOT));
  }
  return parts;
}

function isDot(name: Uint8Array): boolean {
  return name.length === 1 && name[0] === DOT;
}

function isDotDot(name: Uint8Array): boolean {
  return name.length === 2 && name[0] === DOT && name[1] === DOT;
}

function isErrno(error: unknown, code: string): error is MountError {
  return error instanceof MountError && error.code === code;
}

function walkError(code: string, path: string, detail: string): MountError {
  return new MountError("openat", { errno: errnoValue(code), target: path, detail });
}

/**
 * Resolves `path` in the root, with openat2(2), or a component walk where
 * the kernel has no openat2 (ENOSYS) or a seccomp filter refuses it (ENOSYS
 * or EPERM). A missing entry is reported by the walk, which names a
 * dangling symbolic link on the way.
 *
 * @param rootFd The root directory.
 * @param path The path inside it.
 * @param noFollow Whether a final symbolic link is opened itself.
 * @returns An `O_PATH` fd.
 * @throws {MountError} With op `"openat2"` or `"openat"`.
 */
export function resolveInRoot(rootFd: number, path: string, noFollow: boolean): number {
  const flags = O_PATH | (noFollow ? O_NOFOLLOW : 0);
  for (let retry = 0;; retry++) {
    try {
      // openat2(2) has no AT_EMPTY_PATH: the root itself is ".".
      return openat2(rootFd, path || ".", flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    } catch (error) {
      // ENOENT: the walk says which entry is missing, and through which link.
      if (isErrno(error, "ENOSYS") || isErrno(error, "EPERM") || isErrno(error, "ENOENT")) break;
      if (!isErrno(error, "EAGAIN") || retry >= MAX_RETRIES) throw error;
    }
  }
  return walkInRoot(rootFd, path, { noFollow });
}

/**
 * The component walk behind {@linkcode resolveInRoot}: each component opened
 * with `O_PATH|O_NOFOLLOW` from the one before, `..` going back to it (never
 * above the root), a symbolic link read (as bytes) and its target walked in
 * its place (an absolute one from the root), at most 40 links (ELOOP), a
 * trailing slash asking for a directory (ENOTDIR), a path of PATH_MAX bytes
 * or more refused (ENAMETOOLONG). Like `RESOLVE_NO_MAGICLINKS`, but stricter,
 * no symbolic link on a procfs is followed: a magic link can't be told from
 * a plain one by its target.
 *
 * @param rootFd The root directory.
 * @param path The path inside it: a string, or bytes.
 * @param options Whether to follow a final link, and to create what is missing.
 * @returns An `O_PATH` fd.
 * @throws {MountError} With op `"openat"`, or that of the failing call.
 */
export function walkInRoot(rootFd: number, path: CPath, options: WalkOptions = {}): number {
  return walk(rootFd, path, options).fd;
}

/**
 * The mount point a path leads to inside the root: its components, every
 * symbolic link resolved (inside the root), as a mount made there through
 * the same path sits on it.
 *
 * @param rootFd The root directory.
 * @param path The path inside it.
 * @returns The components, from the root; none for the root itself.
 * @throws {MountError} As {@linkcode walkInRoot}.
 */
export function mountPointInRoot(rootFd: number, path: string): Uint8Array[] {
  const { fd, names } = walk(rootFd, path, {});
  close(fd);
  return names;
}

function walk(rootFd: number, target: CPath, options: WalkOptions): Walked {
  const bytes = typeof target === "string" ? encoder.encode(target) : target;
  const path = pathText(target);
  if (bytes.length >= PATH_MAX) {
    throw walkError("ENAMETOOLONG", path, `the path is ${bytes.length} bytes long`);
  }
  // The directories walked so far, the root first, and their names: ".." pops one.
  const stack = [dupCloexec(rootFd)];
  const names: Uint8Array[] = [];
  const pending = split(bytes).reverse();
  let links = 0;
  // The last symbolic link followed, for an error: "a -> b".
  let through: string | undefined;
  try {
    while (pending.length > 0) {
      const entry = pending.pop()!;
      if (isDot(entry)) continue;
      if (isDotDot(entry)) {
        if (stack.length > 1) {
          close(stack.pop()!);
          names.pop();
        }
        continue;
      }
      const dir = stack[stack.length - 1];
      const fd = openEntry(dir, entry, pending.length > 0, options, path, through);
      let type: number;
      try {
        type = fileInfo(fd, "", AT_EMPTY_PATH).mode & S_IFMT;
      } catch (error) {
        close(fd);
        throw error;
      }
      if (type === S_IFLNK && !(pending.length === 0 && options.noFollow)) {
        let link: Uint8Array;
        try {
          if (++links > MAX_LINKS) {
            throw walkError("ELOOP", path, "too many levels of symbolic links");
          }
          if (fstatfsType(dir) === PROC_SUPER_MAGIC) {
            throw walkError(
              "ELOOP",
              path,
              `refusing to follow a symbolic link on procfs: ${pathText(entry)}`,
            );
          }
          link = readlinkAtBytes(fd, "");
        } finally {
          close(fd);
        }
        through = `${[...names, entry].map(pathText).join("/")} -> ${pathText(link)}`;
        if (link[0] === SLASH) {
          while (stack.length > 1) close(stack.pop()!);
          names.length = 0;
        }
        pending.push(...split(link).reverse());
        continue;
      }
      if (pending.length > 0 && type !== S_IFDIR) {
        close(fd);
        throw walkError("ENOTDIR", path, `not a directory: ${pathText(entry)}`);
      }
      stack.push(fd);
      names.push(entry);
    }
    return { fd: stack.pop()!, names };
  } finally {
    for (const fd of stack) close(fd);
  }
}

/**
 * Opens one entry of a walk, `O_PATH|O_NOFOLLOW`. A missing one is made
 * when the walk creates (a directory when more follows it, else what
 * `create` says), owned as asked, then opened as any other: made meanwhile
 * by another, or swapped for a symbolic link, it is walked as it is.
 */
function openEntry(
  dir: number,
  entry: Uint8Array,
  more: boolean,
  options: WalkOptions,
  path: string,
  through: string | undefined,
): number {
  try {
    return openAt(dir, entry, O_PATH | O_NOFOLLOW);
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
    if (options.create === undefined) {
      if (through === undefined) throw error;
      throw error.withHint(`(through the dangling symbolic link ${through})`, { target: path });
    }
  }
  makeEntry(dir, entry, more || options.create() === "directory", options.owner);
  return openAt(dir, entry, O_PATH | O_NOFOLLOW);
}

/** Makes a directory (0755) or an empty file (0644) in `dir`; one made meanwhile will do. */
function makeEntry(
  dir: number,
  name: Uint8Array,
  directory: boolean,
  owner: WalkOptions["owner"],
): void {
  let fd = -1;
  try {
    if (directory) mkdirat(dir, name, 0o755);
    else fd = openAt(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o644);
  } catch (error) {
    if (isErrno(error, "EEXIST")) return; // made meanwhile by another: walked as it is
    throw error;
  }
  try {
    if (owner === undefined) return;
    // The new entry itself, by fd: never what a swapped name leads to.
    if (fd < 0) fd = openAt(dir, name, O_PATH | O_NOFOLLOW | O_DIRECTORY);
    fchownat(fd, "", owner.uid, owner.gid, AT_EMPTY_PATH);
  } finally {
    if (fd >= 0) close(fd);
  }
}
