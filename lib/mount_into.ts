/**
 * The whole mount in one call: {@linkcode mountInto}. Its undoing,
 * `unmount`, is in `unmount.ts`.
 *
 * @module
 */

import { PermissionError } from "../ffi/permission_error.ts";
import { attachOnThread, type AttachOptions } from "./attach.ts";
import { assertAttachOptions, assertTarget, checkMount } from "./check.ts";
import { explainSourceError } from "./hints.ts";
import type { Mount, MountTarget } from "./mount.ts";
import type { ThreadContext } from "./thread.ts";
import { makeSource, type MountFdOptions } from "./source.ts";

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

const NO_OPTIONS: MountIntoOptions = Object.freeze({});
/** The calling thread, with its own `/proc`. */
const THIS_THREAD: ThreadContext = Object.freeze({});

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
  options?: MountIntoOptions,
): Promise<void> {
  try {
    const type = checkMount(mount);
    assertTarget(target);
    assertAttachOptions(options, target);
    options?.signal?.throwIfAborted();
    const made = makeSource(mount, type, options ?? NO_OPTIONS);
    // A plain source comes at once: no await, no turn of the microtask queue.
    const source = made instanceof Promise ? await made : made;
    try {
      options?.signal?.throwIfAborted();
      attachOnThread(source, target, options ?? NO_OPTIONS, THIS_THREAD);
    } finally {
      source.close(); // not `using`: see attachOnThread()
    }
  } catch (error) {
    throw PermissionError.in(explainSourceError(error, mount), "mountInto");
  }
}
