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
import { umount2 } from "../ffi/syscalls.ts";
import { assertTarget, assertUnmountOptions } from "./check.ts";
import type { MountTarget } from "./mount.ts";
import { OwnedFd } from "./fd.ts";
import { mountPointInRoot, walkInRoot } from "./in_root.ts";
import { targetName, type WireTarget, withRoot } from "./target.ts";
import { inProc, type ThreadContext } from "./thread.ts";

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
  const name = targetName(target);
  withRoot(target.root, (rootFd) => {
    // The mount point the path leads to, as mountInto followed it: every
    // symbolic link resolved, inside the root.
    const names = mountPointInRoot(rootFd, target.path);
    const last = names.pop();
    if (last === undefined) {
      throw new MountError("umount2", {
        errno: errnoValue("EINVAL"),
        target: name,
        detail: "the path leads to the root itself, not to a mount point below it",
      });
    }
    using parent = new OwnedFd(walkInRoot(rootFd, join(names)));
    unmountFd(parent.fd, flags, thread, last, name);
  });
}

/** Components joined with "/", as bytes. */
function join(names: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(names.reduce((n, name) => n + name.length + 1, 0));
  let at = 0;
  for (const name of names) {
    bytes.set(name, at);
    bytes[at + name.length] = 0x2f;
    at += name.length + 1;
  }
  return bytes;
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
 * @param name An entry of the directory `fd`, with no `/`, as bytes.
 * @param target The target, as the error names it.
 * @throws {MountError} With op `"umount2"`.
 */
export function unmountFd(
  fd: number,
  flags: number,
  thread: ThreadContext,
  name?: Uint8Array,
  target?: string,
): void {
  const path: string | [string, Uint8Array] = name === undefined
    ? `self/fd/${fd}`
    : [`self/fd/${fd}/`, name];
  const nofollow = name === undefined ? 0 : UMOUNT_NOFOLLOW;
  try {
    inProc(thread, path, (proc) => umount2(proc, flags | nofollow));
  } catch (error) {
    if (!(error instanceof MountError) || target === undefined) throw error;
    throw error.withNames({ target });
  }
}
