/**
 * Where a mount goes: a target resolved once, to an fd. A path inside a
 * container's tree is resolved as if its root were `/`, never leading
 * outside it: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, or a
 * component walk with the same meaning where openat2 is missing.
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
import { errnoValue } from "../ffi/errno.ts";
import { MountError } from "../ffi/mount_error.ts";
import { close, dupCloexec, mkdirat, open, openAt, openat2, readlinkAt } from "../ffi/syscalls.ts";
import { fileInfo, fstatfsType } from "../ffi/mount_api.ts";
import { OwnedFd } from "./fd.ts";

/**
 * A target as it crosses to a Worker: an fd root as a bare number, which
 * the sender keeps open for the call.
 */
export type WireTarget = string | { root: string | { readonly fd: number }; path: string };

/** The longest chain of symbolic links a lookup follows, as the kernel's. */
const MAX_LINKS = 40;
/** How often openat2 is retried when the kernel saw a rename race (EAGAIN). */
const MAX_RETRIES = 32;

/**
 * Names a target for an error message.
 *
 * @param target A checked target.
 * @returns Its path, or its root and path, such as `/rootfs:/data`.
 */
export function targetName(target: WireTarget): string {
  if (typeof target === "string") return target;
  const root = typeof target.root === "string" ? target.root : `fd ${target.root.fd}`;
  return `${root}:${target.path.startsWith("/") ? "" : "/"}${target.path}`;
}

/** How {@linkcode openTarget} treats a missing target. */
export interface OpenTargetOptions {
  /**
   * Create a missing mount point inside the root (an `InRoot` target only):
   * parent directories (0755), then a directory, or an empty file (0644)
   * when this says the source is not a directory.
   */
  create?: () => "directory" | "file";
  /** Open the last component itself if it is a symbolic link (for unmount). */
  noFollow?: boolean;
  /** The mount source, for errors. */
  source?: string;
}

/**
 * Resolves a target once, to an `O_PATH` fd: a string as mount(2) would, an
 * {@linkcode InRoot} inside its root.
 *
 * @param target A checked target.
 * @param options Whether to create a missing mount point, and to follow a
 * final symbolic link.
 * @returns The fd, which the caller closes.
 * @throws {MountError} With op `"open"`, `"openat2"` (`ENOENT`, `ELOOP` for
 * a magic link or too many links, `EXDEV`), `"mkdirat"` ...
 */
export function openTarget(target: WireTarget, options: OpenTargetOptions = {}): OwnedFd {
  try {
    if (typeof target === "string") {
      return new OwnedFd(open(target, O_PATH | (options.noFollow ? O_NOFOLLOW : 0)));
    }
    const root = target.root;
    if (typeof root !== "string") return openInRoot(root.fd, target.path, options);
    using rootFd = new OwnedFd(open(root, O_PATH | O_DIRECTORY));
    return openInRoot(rootFd.fd, target.path, options);
  } catch (error) {
    if (!(error instanceof MountError)) throw error;
    // Name the target as the caller gave it, not the component that failed,
    // and say which of the two paths is missing.
    const named = error.withNames({ source: options.source, target: targetName(target) });
    if (error.code !== "ENOENT") throw named;
    throw named.withHint(
      typeof target !== "string" && options.create === undefined
        ? "(the target is missing; create: true makes a missing mount point inside the root)"
        : "(the target is missing)",
    );
  }
}

/**
 * Opens `path` inside the directory `rootFd` as if it were `/`, creating
 * what is missing if asked.
 *
 * @param rootFd The root directory.
 * @param path The path inside it.
 * @param options Whether to create a missing mount point, and to follow a
 * final symbolic link.
 * @returns An `O_PATH` fd, which the caller closes.
 * @throws {MountError} As {@linkcode openTarget}.
 */
function openInRoot(
  rootFd: number,
  path: string,
  options: OpenTargetOptions = {},
): OwnedFd {
  try {
    return new OwnedFd(resolveInRoot(rootFd, path, options.noFollow === true));
  } catch (error) {
    if (options.create === undefined || !isErrno(error, "ENOENT")) throw error;
  }
  return new OwnedFd(createInRoot(rootFd, path, options.create));
}

/**
 * The components of a path; `.` and empty ones dropped.
 *
 * @param path A path.
 * @returns Its components.
 */
export function components(path: string): string[] {
  return path.split("/").filter((name) => name !== "" && name !== ".");
}

function isErrno(error: unknown, code: string): error is MountError {
  return error instanceof MountError && error.code === code;
}

/**
 * Resolves `path` in the root, with openat2(2), or a component walk where
 * the kernel has no openat2 (ENOSYS) or a seccomp filter refuses it (ENOSYS
 * or EPERM).
 *
 * @param rootFd The root directory.
 * @param path The path inside it.
 * @param noFollow Whether a final symbolic link is opened itself.
 * @returns An `O_PATH` fd.
 */
export function resolveInRoot(rootFd: number, path: string, noFollow: boolean): number {
  const flags = O_PATH | (noFollow ? O_NOFOLLOW : 0);
  for (let retry = 0;; retry++) {
    try {
      // openat2(2) has no AT_EMPTY_PATH: the root itself is ".".
      return openat2(rootFd, path || ".", flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    } catch (error) {
      if (isErrno(error, "ENOSYS") || isErrno(error, "EPERM")) break;
      if (!isErrno(error, "EAGAIN") || retry >= MAX_RETRIES) throw error;
    }
  }
  return walkInRoot(rootFd, path, noFollow);
}

function walkError(code: string, path: string, detail: string): MountError {
  return new MountError("openat", { errno: errnoValue(code), target: path, detail });
}

/**
 * The component walk behind {@linkcode resolveInRoot} where openat2 is
 * missing: each component opened with `O_PATH|O_NOFOLLOW` from the one
 * before, `..` going back to it (never above the root), a symbolic link
 * read and its target walked in its place (an absolute one from the root),
 * at most 40 links (ELOOP). Like `RESOLVE_NO_MAGICLINKS`, but stricter, no
 * symbolic link on a procfs is followed: a magic link can't be told from a
 * plain one by its target.
 *
 * @param rootFd The root directory.
 * @param path The path inside it.
 * @param noFollow Whether a final symbolic link is opened itself.
 * @returns An `O_PATH` fd.
 * @throws {MountError} With op `"openat"`, or that of the failing call.
 */
export function walkInRoot(rootFd: number, path: string, noFollow: boolean): number {
  // The directories walked so far, the root first: ".." pops one.
  const stack = [dupCloexec(rootFd)];
  const pending = components(path).reverse();
  let links = 0;
  try {
    while (pending.length > 0) {
      const entry = pending.pop()!;
      if (entry === "..") {
        if (stack.length > 1) close(stack.pop()!);
        continue;
      }
      const dir = stack[stack.length - 1];
      const fd = openAt(dir, entry, O_PATH | O_NOFOLLOW);
      let type: number;
      try {
        type = fileInfo(fd, "", AT_EMPTY_PATH).mode & S_IFMT;
      } catch (error) {
        close(fd);
        throw error;
      }
      const last = pending.length === 0;
      if (type === S_IFLNK && !(last && noFollow)) {
        let link: string;
        try {
          if (++links > MAX_LINKS) {
            throw walkError("ELOOP", path, "too many levels of symbolic links");
          }
          if (fstatfsType(dir) === PROC_SUPER_MAGIC) {
            throw walkError(
              "ELOOP",
              path,
              `refusing to follow a symbolic link on procfs: ${entry}`,
            );
          }
          link = readlinkAt(fd, "");
        } finally {
          close(fd);
        }
        if (link.startsWith("/")) { while (stack.length > 1) close(stack.pop()!); }
        pending.push(...components(link).reverse());
        continue;
      }
      if (!last && type !== S_IFDIR) {
        close(fd);
        throw walkError("ENOTDIR", path, `not a directory: ${entry}`);
      }
      stack.push(fd);
    }
    return stack.pop()!;
  } finally {
    for (const fd of stack) close(fd);
  }
}

/**
 * Creates what is missing of `path` inside the root: each missing parent a
 * directory (0755), made with mkdirat(2) in the directory resolved before
 * it and opened with `O_NOFOLLOW`, then the last one, a directory or an
 * empty file (0644, `O_CREAT|O_EXCL`). A component swapped for a symbolic
 * link meanwhile makes it fail, never leave the root.
 */
function createInRoot(rootFd: number, path: string, kind: () => "directory" | "file"): number {
  const names = components(path);
  if (names.length === 0) return dupCloexec(rootFd);
  let parent = dupCloexec(rootFd);
  try {
    for (let i = 0; i < names.length; i++) {
      const prefix = names.slice(0, i + 1).join("/");
      let fd: number;
      try {
        fd = resolveInRoot(rootFd, prefix, false);
      } catch (error) {
        if (!isErrno(error, "ENOENT") || names[i] === "..") throw error;
        const directory = i < names.length - 1 || kind() === "directory";
        fd = createEntry(
          parent,
          names[i],
          directory,
          () => resolveInRoot(rootFd, prefix, false),
        );
      }
      close(parent);
      parent = fd;
    }
    const result = parent;
    parent = -1;
    return result;
  } finally {
    if (parent >= 0) close(parent);
  }
}

/** Makes one entry in `dir`, or takes the one a racing creator made. */
function createEntry(
  dir: number,
  name: string,
  directory: boolean,
  resolve: () => number,
): number {
  try {
    if (directory) {
      mkdirat(dir, name, 0o755);
    } else {
      close(openAt(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o644));
    }
  } catch (error) {
    // Made meanwhile by another: resolve it as any other component.
    if (isErrno(error, "EEXIST")) return resolve();
    throw error;
  }
  return openAt(dir, name, O_PATH | O_NOFOLLOW | (directory ? O_DIRECTORY : 0));
}
