/**
 * Where a mount goes: a target resolved once, to an fd. A path inside a
 * container's tree is resolved as if its root were `/`, never leading
 * outside it (`in_root.ts`).
 *
 * @module
 */

import { O_DIRECTORY, O_NOFOLLOW, O_PATH } from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { open } from "../ffi/syscalls.ts";
import { OwnedFd } from "./fd.ts";
import { resolveInRoot, walkInRoot, type WalkOptions } from "./in_root.ts";

/**
 * A target as it crosses to a Worker: an fd root as a bare number, which
 * the sender keeps open for the call.
 */
export type WireTarget =
  | string
  | { root: string | { readonly fd: number; readonly name?: string }; path: string };

/**
 * Names a target for an error message.
 *
 * @param target A checked target.
 * @returns Its path, or its root and path, such as `/rootfs:/data`.
 */
export function targetName(target: WireTarget): string {
  if (typeof target === "string") return target;
  const root = typeof target.root === "string"
    ? target.root
    : target.root.name ?? `fd ${target.root.fd}`;
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
  /** The owner of what `create` makes (default: the caller). */
  owner?: WalkOptions["owner"];
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
    return withRoot(target.root, (rootFd) => openInRoot(rootFd, target.path, options));
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
 * Runs `fn` with an fd of an `InRoot` target's root: its own fd, or its path
 * opened (`O_PATH|O_DIRECTORY`) for the call.
 *
 * @param root The root: a path, or an fd.
 * @param fn What to do with it.
 * @returns What `fn` returns.
 */
export function withRoot<T>(root: string | { readonly fd: number }, fn: (rootFd: number) => T): T {
  if (typeof root !== "string") return fn(root.fd);
  using rootFd = new OwnedFd(open(root, O_PATH | O_DIRECTORY));
  return fn(rootFd.fd);
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
    if (options.create === undefined || !(error instanceof MountError)) throw error;
    if (error.code !== "ENOENT") throw error;
  }
  const { create, owner } = options;
  return new OwnedFd(walkInRoot(rootFd, path, { create, owner }));
}
