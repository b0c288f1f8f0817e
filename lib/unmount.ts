/**
 * Undoing a mount: {@linkcode unmount}, and `unmountOnThread`, its core on
 * the calling thread, which a Worker joined to another mount namespace runs
 * too.
 *
 * @module
 */

import { MNT_DETACH, UMOUNT_NOFOLLOW } from "../ffi/constants.ts";
import { errnoValue } from "../ffi/errno.ts";
import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { chdir, fchdir, umount2 } from "../ffi/syscalls.ts";
import { assertTarget, assertUnmountOptions } from "./check.ts";
import type { MountTarget } from "./mount.ts";
import { components, openTarget, targetName, type WireTarget } from "./target.ts";

/** What a call on the calling thread needs of it. */
export interface ThreadContext {
  /**
   * An fd of a `/proc` that shows this process, in a Worker joined to
   * another mount namespace (where `/proc` may show another pid namespace,
   * or nothing); `undefined` for the thread's own `/proc`.
   */
  readonly procFd?: number;
}

/**
 * Options of {@linkcode unmount}.
 *
 * @example Detach a busy mount
 * ```ts
 * import type { UnmountOptions } from "@mountfd/mountfd";
 * const options: UnmountOptions = { detach: true };
 * ```
 */
export interface UnmountOptions {
  /** Detach the mount now, and let the kernel clean it up once unused (`MNT_DETACH`). */
  detach?: boolean;
}

/**
 * Unmounts the mount at `target` (umount2(2)), in the caller's mount
 * namespace. A string is resolved as umount(2) would; an `InRoot` target
 * inside its root, without following a final symbolic link.
 *
 * @param target The mount point.
 * @param options `detach` for `MNT_DETACH`.
 * @throws {TypeError} For a bad target.
 * @throws {MountError} With op `"umount2"` (EINVAL: nothing is mounted
 * there; EBUSY: in use, try `detach`), or that of resolving the target.
 *
 * @example Undo a mount in a container's rootfs
 * ```ts
 * import { unmount } from "@mountfd/mountfd";
 * unmount({ root: "/run/container/rootfs", path: "/data" }, { detach: true });
 * ```
 */
export function unmount(target: MountTarget, options?: UnmountOptions): void {
  assertTarget(target);
  assertUnmountOptions(options);
  try {
    unmountOnThread(target, options ?? {}, {});
  } catch (error) {
    throw PermissionError.in(error, "unmount");
  }
}

/**
 * Unmounts on the calling thread, synchronously, for a Worker too. An
 * `InRoot` target's parent is resolved in the root, and the mount on its
 * last entry unmounted through it (`UMOUNT_NOFOLLOW`): an fd of the mount
 * itself would keep it busy.
 *
 * @param target A checked target.
 * @param options `detach` for `MNT_DETACH`.
 * @param thread Where this thread's `/proc` is.
 * @throws {MountError} With op `"umount2"`, or that of resolving the target.
 */
export function unmountOnThread(
  target: WireTarget,
  options: UnmountOptions,
  thread: ThreadContext,
): void {
  const flags = options.detach ? MNT_DETACH : 0;
  if (typeof target === "string") return umount2(target, flags);
  const names = components(target.path);
  const last = names.pop();
  if (last === undefined || last === "..") {
    throw new MountError("umount2", {
      errno: errnoValue("EINVAL"),
      target: targetName(target),
      detail: "the path must end in a name below the root",
    });
  }
  using parent = openTarget({ root: target.root, path: names.join("/") });
  unmountFd(parent.fd, flags, thread, last, targetName(target));
}

/**
 * umount2(2) through `/proc/self/fd/N`: of the mount whose root `fd` is, or,
 * with `name`, of the mount on the entry `name` of the directory `fd` (not
 * following a symbolic link there). An fd of a mount keeps it busy: only a
 * detach goes through its own fd.
 *
 * @param fd A mount fd, or a directory fd with `name`.
 * @param flags `MNT_*` flags.
 * @param thread Where this thread's `/proc` is.
 * @param name An entry of the directory `fd`, with no `/`.
 * @param target The target, as the error names it.
 * @throws {MountError} With op `"umount2"`.
 */
export function unmountFd(
  fd: number,
  flags: number,
  thread: ThreadContext,
  name?: string,
  target?: string,
): void {
  const path = name === undefined ? `self/fd/${fd}` : `self/fd/${fd}/${name}`;
  const nofollow = name === undefined ? 0 : UMOUNT_NOFOLLOW;
  try {
    if (thread.procFd === undefined) return umount2(`/proc/${path}`, flags | nofollow);
    // A relative path from the saved /proc: this thread's cwd is its own.
    fchdir(thread.procFd, "/proc");
    try {
      umount2(path, flags | nofollow);
    } finally {
      chdir("/");
    }
  } catch (error) {
    if (!(error instanceof MountError) || target === undefined) throw error;
    throw error.withNames({ target });
  }
}
