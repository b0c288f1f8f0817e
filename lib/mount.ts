/**
 * The Mount model: a port of runc's `configs.Mount`, as far as mount sources
 * need it.
 *
 * @module
 */

import { MS_BIND } from "../ffi/constants.ts";
import type { OwnedFd } from "./fd.ts";

/**
 * One range of an id mapping, as in `/proc/PID/uid_map`.
 *
 * `containerID` is the id stored on disk; `hostID` is the id seen through an
 * id-mapped mount. With `{ containerID: 0, hostID: 100000, size: 65536 }`, a
 * file owned by 0 shows as owned by 100000.
 *
 * @example Map 65536 ids from 0 to 100000
 * ```ts
 * import type { IDMap } from "@mountfd/mountfd";
 * const range: IDMap = { containerID: 0, hostID: 100000, size: 65536 };
 * ```
 */
export interface IDMap {
  /** The first id inside the mapping (on disk, for a mount). */
  containerID: number;
  /** The first id outside it (through the mount). */
  hostID: number;
  /** How many ids the range holds; at least 1. */
  size: number;
}

/**
 * The uid and gid mappings of a user namespace.
 *
 * @example The usual rootless range
 * ```ts
 * import type { Mapping } from "@mountfd/mountfd";
 * const mapping: Mapping = {
 *   uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 * };
 * ```
 */
export interface Mapping {
  /** The uid ranges. */
  uidMappings: IDMap[];
  /** The gid ranges. */
  gidMappings: IDMap[];
}

/**
 * How a mount is id-mapped: either an existing user namespace, or uid and gid
 * mappings for which a user namespace is made.
 *
 * @example An id mapping from lists
 * ```ts
 * import type { MountIDMapping } from "@mountfd/mountfd";
 * const idMapping: MountIDMapping = {
 *   uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 * };
 * ```
 */
export interface MountIDMapping {
  /** "ridmap": apply `MOUNT_ATTR_IDMAP` to every submount too. */
  recursive?: boolean;
  /** An existing user namespace, such as `/proc/PID/ns/user`. */
  usernsPath?: string;
  /** The uid ranges; used with `gidMappings`, not with `usernsPath`. */
  uidMappings?: IDMap[];
  /** The gid ranges; used with `uidMappings`, not with `usernsPath`. */
  gidMappings?: IDMap[];
}

/**
 * Attributes applied with mount_setattr(2), recursively ("rro", "rnosuid" ...).
 *
 * @example Recursively read-only
 * ```ts
 * import { MOUNT_ATTR_RDONLY, type MountAttr } from "@mountfd/mountfd";
 * const recAttr: MountAttr = { attrSet: MOUNT_ATTR_RDONLY, attrClr: 0, propagation: 0 };
 * ```
 */
export interface MountAttr {
  /** `MOUNT_ATTR_*` bits to set. */
  attrSet: number;
  /** `MOUNT_ATTR_*` bits to clear. */
  attrClr: number;
  /** One `MS_*` propagation type, or 0. */
  propagation: number;
}

/**
 * A mount, as a container runtime describes it.
 *
 * @example An id-mapped, recursive bind mount
 * ```ts
 * import { MS_BIND, MS_REC, type Mount } from "@mountfd/mountfd";
 * const mount: Mount = {
 *   source: "/srv/data",
 *   destination: "/data",
 *   flags: MS_BIND | MS_REC,
 *   idMapping: {
 *     recursive: true,
 *     uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *     gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   },
 * };
 * ```
 */
export interface Mount {
  /** The path mounted (for a bind mount) or the device. */
  source: string;
  /** Where the mount goes, inside the container. */
  destination: string;
  /** The filesystem type, for non-bind mounts. */
  device?: string;
  /** `MS_*` flags; `MS_BIND` marks a bind mount, `MS_REC` a recursive one. */
  flags: number;
  /** `MS_*` flags that options explicitly cleared ("rw", "suid" ...). */
  clearedFlags?: number;
  /** Propagation types (`MS_SHARED`, `MS_PRIVATE` ...) applied after mounting. */
  propagationFlags?: number[];
  /** Filesystem-specific options. */
  data?: string;
  /** Attributes applied recursively with mount_setattr(2). */
  recAttr?: MountAttr;
  /** Runtime extensions, such as runc's tmpcopyup. */
  extensions?: number;
  /** How the mount is id-mapped, if it is. */
  idMapping?: MountIDMapping;
}

/**
 * Whether `mount` is a bind mount (`MS_BIND` is set).
 *
 * @param mount The mount.
 * @returns `true` for a bind mount.
 *
 * @example Check a mount
 * ```ts
 * import { isBind, MS_BIND } from "@mountfd/mountfd";
 * isBind({ source: "/a", destination: "/b", flags: MS_BIND }); // true
 * ```
 */
export function isBind(mount: Mount): boolean {
  return (mount.flags & MS_BIND) !== 0;
}

/**
 * Whether `mount` is id-mapped (it has an `idMapping`).
 *
 * @param mount The mount.
 * @returns `true` for an id-mapped mount.
 *
 * @example Check a mount
 * ```ts
 * import { isIDMapped, MS_BIND } from "@mountfd/mountfd";
 * isIDMapped({ source: "/a", destination: "/b", flags: MS_BIND }); // false
 * ```
 */
export function isIDMapped(mount: Mount): boolean {
  return mount.idMapping != null;
}

/**
 * What kind of fd a `MountSource` holds: a detached mount from
 * open_tree(2), which carries the mount's id mapping and flags, or an
 * `O_PATH` fd of a bare bind's source.
 *
 * @example Branch on the type
 * ```ts
 * import type { MountSourceType } from "@mountfd/mountfd";
 * const type: MountSourceType = "open_tree";
 * ```
 */
export type MountSourceType = "open_tree" | "plain-open";

/**
 * A path inside a root, such as a container's rootfs: resolved as if `root`
 * were `/`. `..` and absolute symbolic links stop at the root, magic links
 * (`/proc/PID/fd/N`, `/proc/PID/root` ...) are refused, and the result is
 * never outside the root.
 *
 * @example The /data directory of a container's rootfs
 * ```ts
 * import type { InRoot } from "@mountfd/mountfd";
 * const target: InRoot = { root: "/run/container/rootfs", path: "/data" };
 * ```
 */
export interface InRoot {
  /** The root: a directory path of the caller's, or an fd of one (not closed). */
  root: string | OwnedFd;
  /** The path inside it; absolute or not, it starts at the root. */
  path: string;
}

/**
 * Where a mount goes: a path of the caller's mount namespace, resolved once
 * as mount(2) would (following symbolic links), or a path inside a root.
 *
 * @example Two targets
 * ```ts
 * import type { MountTarget } from "@mountfd/mountfd";
 * const host: MountTarget = "/mnt/data";
 * const inContainer: MountTarget = { root: "/run/container/rootfs", path: "/data" };
 * ```
 */
export type MountTarget = string | InRoot;
