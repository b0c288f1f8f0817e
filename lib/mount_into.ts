/**
 * The whole mount in one call, and its undoing: {@linkcode mountInto} and
 * {@linkcode unmount}.
 *
 * @module
 */

import { MNT_DETACH } from "../ffi/constants.ts";
import { errnoValue } from "../ffi/errno.ts";
import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { umount2 } from "../ffi/syscalls.ts";
import {
  assertAttachOptions,
  attach,
  type AttachOptions,
  type ThreadContext,
  unmountFd,
} from "./attach.ts";
import { assertMount } from "./check.ts";
import { describe } from "./errors.ts";
import type { Mount } from "./mount.ts";
import { mountFd, type MountFdOptions } from "./source.ts";
import {
  assertTarget,
  components,
  type MountTarget,
  openTarget,
  targetName,
  type WireTarget,
} from "./target.ts";

/**
 * Options of {@linkcode mountInto}: those of {@linkcode mountFd} and of
 * {@linkcode attachMountSource}.
 *
 * @example Share user namespaces across mounts, and create mount points
 * ```ts
 * import { Handles, type MountIntoOptions } from "@mountfd/mountfd";
 * using handles = new Handles();
 * const options: MountIntoOptions = { handles, create: true, signal: AbortSignal.timeout(5000) };
 * ```
 */
export interface MountIntoOptions extends MountFdOptions, AttachOptions {}

/**
 * Makes the whole mount at `target`, in the caller's mount namespace:
 * {@linkcode mountFd}, whose source carries the mount's id mapping, flags
 * and `recAttr`, then {@linkcode attachMountSource}, which applies its
 * propagation through the new mount's fd. A failure after the attach
 * detaches the mount again.
 *
 * @param mount A bind mount.
 * @param target The mount point: a path, or a path inside a root.
 * @param options The user namespace cache, an abort signal, and whether to
 * create a missing mount point inside the root.
 * @throws {TypeError} For a malformed mount or target, before any syscall.
 * @throws {MountError} Naming the step that failed, such as
 * `"mount_setattr"`, `"openat2"`, `"move_mount"` or
 * `"mount_setattr(MS_SHARED)"`.
 * @throws The signal's reason, once aborted.
 *
 * @example A read-only, id-mapped bind mount in a container's rootfs
 * ```ts
 * import { Handles, mountInto, MS_BIND, MS_RDONLY } from "@mountfd/mountfd";
 *
 * using handles = new Handles();
 * await mountInto({
 *   source: "/srv/data",
 *   destination: "/data",
 *   flags: MS_BIND | MS_RDONLY,
 *   idMapping: {
 *     uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *     gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   },
 * }, { root: "/run/container/rootfs", path: "/data" }, { handles, create: true });
 * ```
 */
export async function mountInto(
  mount: Mount,
  target: MountTarget,
  options: MountIntoOptions = {},
): Promise<void> {
  assertMount(mount);
  assertTarget(target);
  assertAttachOptions(options, target);
  try {
    const source = await mountFd(mount, options);
    try {
      options.signal?.throwIfAborted();
      attach(source, target, options, {});
    } finally {
      source.close(); // not `using`: see attach()
    }
  } catch (error) {
    throw PermissionError.in(error, "mountInto");
  }
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
export function unmount(target: MountTarget, options: UnmountOptions = {}): void {
  assertTarget(target);
  assertUnmountOptions(options);
  try {
    unmountTarget(target, options, {});
  } catch (error) {
    throw PermissionError.in(error, "unmount");
  }
}

/**
 * Checks the options of an unmount.
 *
 * @param options What should be unmount options.
 * @throws {TypeError} For a non-boolean `detach`.
 */
export function assertUnmountOptions(options: unknown): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options: expected an object, got ${describe(options)}`);
  }
  const { detach } = options as UnmountOptions;
  if (detach !== undefined && typeof detach !== "boolean") {
    throw new TypeError(`Invalid options.detach: expected a boolean, got ${describe(detach)}`);
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
export function unmountTarget(
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
