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
 * broker ({@linkcode addMountBroker}, {@linkcode requestDirectoryMount})
 * gives unprivileged users id-mapped mounts of their own directories over
 * Varlink, as systemd-mountfsd does.
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
 * import { Handles, mountInto, MS_BIND, MS_RDONLY } from "./mod.ts";
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

// Varlink: a service and a client.
export { VarlinkError } from "./lib/varlink/error.ts";
export {
  type VarlinkCall,
  type VarlinkMethod,
  type VarlinkReply,
  VarlinkService,
  type VarlinkServiceOptions,
} from "./lib/varlink/service.ts";
export {
  type VarlinkCallOptions,
  VarlinkClient,
  type VarlinkResult,
} from "./lib/varlink/client.ts";

// The mount broker: id-mapped mounts of their own directories for unprivileged users.
export {
  addMountBroker,
  type MountBrokerOptions,
  type MountDirectoryMode,
  MOUNTFD_INTERFACE,
  SYSTEMD_INTERFACE,
} from "./lib/broker/mount_directory.ts";
export {
  DEFAULT_BROKER_SOCKET,
  type DirectoryMountOptions,
  requestDirectoryMount,
} from "./lib/broker/client.ts";

// Errors.
export { MountError, type MountErrorNames, type MountErrorOptions } from "./lib/errors.ts";

// Kernel constants.
export * from "./ffi/constants.ts";
