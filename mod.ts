/**
 * Mount-source file descriptors and id-mapped mounts for Deno: a port of
 * runc's `mountFd` and its user namespace `Handles`.
 *
 * A bind mount becomes an fd ({@linkcode mountFd}) that can be attached
 * anywhere ({@linkcode attachMountSource}). An id-mapped bind mount shows its
 * files with shifted owners: with `0:100000:65536`, a file owned by 0 on disk
 * shows as owned by 100000 through the mount, with no recursive `chown`.
 *
 * Needs Linux 5.12 (6.3 for tmpfs), and `--allow-ffi` (libc calls) with
 * `--allow-run=unshare` (user namespaces) and `--allow-read`/`--allow-write`
 * on `/proc` (their maps).
 *
 * @example Id-map a directory into a container's tree
 * ```ts
 * import { attachMountSource, Handles, mountFd, MS_BIND } from "./mod.ts";
 *
 * using handles = new Handles();
 * using source = await mountFd({
 *   source: "/srv/data",
 *   destination: "/data",
 *   flags: MS_BIND,
 *   idMapping: {
 *     uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *     gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   },
 * }, { handles });
 * attachMountSource(source, "/run/container/rootfs/data");
 * ```
 *
 * @module
 */

// The Mount model.
export {
  type IDMap,
  isBind,
  isIDMapped,
  type Mapping,
  type Mount,
  type MountAttr,
  type MountIDMapping,
} from "./lib/mount.ts";
export { EXT_COPYUP, KNOWN_MOUNT_OPTIONS, stringifyMountFlags } from "./lib/flags.ts";

// Owned file descriptors.
export { OwnedFd } from "./lib/fd.ts";

// OCI runtime-spec mounts, and their validation.
export { mountFromSpec, type SpecContext, type SpecMount } from "./lib/spec.ts";
export { validateMount } from "./lib/validate.ts";

// User namespaces.
export { getUserNamespaceMappings, isSameMapping } from "./lib/idmap.ts";
export { type GetOptions, Handles, type HandlesOptions } from "./lib/userns.ts";

// Mount sources.
export { mountFd, type MountFdOptions, MountSource, type MountSourceType } from "./lib/mount_fd.ts";

// Where a mount goes, and attaching it there.
export type { InRoot, MountTarget } from "./lib/target.ts";
export { attachMountSource, type AttachOptions } from "./lib/attach.ts";
export {
  mountInto,
  type MountIntoOptions,
  unmount,
  type UnmountOptions,
} from "./lib/mount_into.ts";

// Another mount namespace, joined by a Worker (runc's mount source thread).
export {
  type MountNamespace,
  type MountNamespaceOptions,
  type MountNamespaceRequestOptions,
  openMountNamespace,
} from "./lib/mount_namespace.ts";

// Errors.
export { MountError, type MountErrorOptions } from "./lib/errors.ts";

// Kernel constants.
export * from "./ffi/constants.ts";
