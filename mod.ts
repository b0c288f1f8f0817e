/**
 * Mount-source file descriptors and id-mapped mounts for Deno: a port of
 * runc's `mountFd` and its user namespace `Handles`.
 *
 * A bind mount becomes an fd ({@linkcode mountFd}) that can be attached
 * anywhere ({@linkcode attachMountSource}), or is made whole in one call
 * ({@linkcode mountInto}). An id-mapped bind mount shows its files with
 * shifted owners: with `0:100000:65536`, a file owned by 0 on disk shows as
 * owned by 100000 through the mount, with no recursive `chown`. A mount
 * namespace of another process, such as a running container's, is reached
 * with {@linkcode openMountNamespace}.
 *
 * Mount sources and other fds go between processes over Unix sockets
 * ({@linkcode UnixConnection}, {@linkcode sendMountSources}). The mount
 * broker gives unprivileged users id-mapped mounts of their own directories
 * over Varlink, as systemd-mountfsd does: {@linkcode requestDirectoryMount}
 * asks it; its service, `addMountBroker`, is the subpath export
 * `@mountfd/mountfd/broker` (`broker.ts`), which importing this module does
 * not load.
 *
 * A string target is a path of the caller's mount namespace, resolved as
 * mount(2) would, symlinks followed: inside a container's tree, give the
 * root and the path apart, as an `InRoot` (`{ root, path }`), which never
 * resolves outside the root.
 *
 * Needs Linux 5.12 (6.3 to id-map a tmpfs). Permissions: `--allow-ffi`, for
 * every syscall (the id maps under `/proc` are read and written through libc
 * too, so no `--allow-read` or `--allow-write` is needed), and
 * `--allow-run=unshare` to make user namespaces for mappings given as lists.
 * {@linkcode openMountNamespace} also needs `--allow-read` of this module's
 * directory when it is imported from files: its Worker loads them.
 *
 * @example Id-map a directory, in the caller's mount namespace (as root)
 * ```ts
 * import { Handles, mountInto, MS_BIND, MS_RDONLY } from "@mountfd/mountfd";
 *
 * using handles = new Handles(); // user namespaces, cached by mapping
 * await mountInto({
 *   source: "/srv/data",
 *   destination: "/data",
 *   flags: MS_BIND | MS_RDONLY,
 *   idMapping: {
 *     uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *     gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   },
 * }, "/mnt/data", { handles });
 * ```
 *
 * @module
 */

// The Mount model.
export {
  type IDMap,
  type InRoot,
  isBind,
  isIDMapped,
  type Mapping,
  type Mount,
  type MountAttr,
  type MountIDMapping,
  type MountSourceType,
  type MountTarget,
} from "./lib/mount.ts";
export { EXT_COPYUP, KNOWN_MOUNT_OPTIONS, stringifyMountFlags } from "./lib/flags.ts";

// Owned file descriptors.
export { OwnedFd } from "./lib/fd.ts";

// OCI runtime-spec mounts, and their validation.
export { mountFromSpec, type SpecContext, type SpecMount } from "./lib/spec.ts";
export { validateMount } from "./lib/validate.ts";

// User namespaces.
export { getUserNamespaceMappings, isSameMapping } from "./lib/userns/idmap.ts";
export { type GetOptions, Handles, type HandlesOptions } from "./lib/userns/handles.ts";

// Mount sources.
export { mountFd, type MountFdOptions, MountSource } from "./lib/source.ts";

// Where a mount goes, and attaching it there.
export { attachMountSource, type AttachOptions } from "./lib/attach.ts";
export { mountInto, type MountIntoOptions } from "./lib/mount_into.ts";
export { unmount, type UnmountOptions } from "./lib/unmount.ts";

// Another mount namespace, joined by a Worker (runc's mount source thread).
export type {
  MountNamespace,
  MountNamespaceOptions,
  MountNamespaceRequestOptions,
  MountNamespaceSourceOptions,
} from "./lib/namespace/mount_namespace.ts";
export { openMountNamespace } from "./lib/namespace/open.ts";

// Mount sources and other fds across processes: Unix sockets that carry fds.
export {
  type Chunk,
  type PeerCredentials,
  UnixConnection,
  UnixListener,
  type WaitOptions,
} from "./lib/socket/unix.ts";
export {
  encodeMessage,
  MessageReader,
  receiveMountSources,
  sendMessage,
  sendMountSources,
  type WireLimits,
  type WireMessage,
} from "./lib/socket/message.ts";

// Varlink: a client (the service is in broker.ts).
export { VarlinkError } from "./lib/varlink/error.ts";
export {
  type VarlinkCallOptions,
  VarlinkClient,
  type VarlinkResult,
} from "./lib/varlink/client.ts";

// The mount broker: id-mapped mounts of their own directories for unprivileged users.
// Its service (addMountBroker, VarlinkService) is @mountfd/mountfd/broker: see broker.ts.
export {
  type MountDirectoryMode,
  MOUNTFD_INTERFACE,
  SYSTEMD_INTERFACE,
} from "./lib/broker/interface.ts";
export {
  DEFAULT_BROKER_SOCKET,
  type DirectoryMountOptions,
  requestDirectoryMount,
} from "./lib/broker/client.ts";

// Errors.
export { MountError, type MountErrorNames, type MountErrorOptions } from "./lib/errors.ts";

// Kernel constants a mount is made of: MS_* flags (Mount.flags, clearedFlags,
// propagationFlags), MOUNT_ATTR_* attributes (recAttr) and MNT_* unmount flags.
export {
  MNT_DETACH,
  MNT_EXPIRE,
  MNT_FORCE,
  MOUNT_ATTR__ATIME,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NODIRATIME,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_NOSYMFOLLOW,
  MOUNT_ATTR_RDONLY,
  MOUNT_ATTR_RELATIME,
  MOUNT_ATTR_STRICTATIME,
  MS_BIND,
  MS_DIRSYNC,
  MS_I_VERSION,
  MS_LAZYTIME,
  MS_MANDLOCK,
  MS_MOVE,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_POSIXACL,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
} from "./ffi/constants.ts";
