/**
 * The Mount model: a port of runc's `configs.Mount`, as far as mount sources
 * need it.
 *
 * @module
 */

import {
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
} from "../ffi/constants.ts";
import { assertPath } from "../ffi/syscalls.ts";
import { describe } from "./errors.ts";
import { checkIDMaps } from "./idmap.ts";

/**
 * One range of an id mapping, as in `/proc/PID/uid_map`.
 *
 * `containerID` is the id stored on disk; `hostID` is the id seen through an
 * id-mapped mount. With `{ containerID: 0, hostID: 100000, size: 65536 }`, a
 * file owned by 0 shows as owned by 100000.
 *
 * @example Map 65536 ids from 0 to 100000
 * ```ts
 * import type { IDMap } from "../mod.ts";
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
 * How a mount is id-mapped: either an existing user namespace, or uid and gid
 * mappings for which a user namespace is made.
 *
 * @example An id mapping from lists
 * ```ts
 * import type { MountIDMapping } from "../mod.ts";
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
 * import { MOUNT_ATTR_RDONLY, type MountAttr } from "../mod.ts";
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
 * import { MS_BIND, MS_REC, type Mount } from "../mod.ts";
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
 * import { isBind, MS_BIND } from "../mod.ts";
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
 * import { isIDMapped, MS_BIND } from "../mod.ts";
 * isIDMapped({ source: "/a", destination: "/b", flags: MS_BIND }); // false
 * ```
 */
export function isIDMapped(mount: Mount): boolean {
  return mount.idMapping != null;
}

const FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["MS_RDONLY", MS_RDONLY],
  ["MS_NOSUID", MS_NOSUID],
  ["MS_NODEV", MS_NODEV],
  ["MS_NOEXEC", MS_NOEXEC],
  ["MS_SYNCHRONOUS", MS_SYNCHRONOUS],
  ["MS_REMOUNT", MS_REMOUNT],
  ["MS_MANDLOCK", MS_MANDLOCK],
  ["MS_DIRSYNC", MS_DIRSYNC],
  ["MS_NOSYMFOLLOW", MS_NOSYMFOLLOW],
  ["MS_NOATIME", MS_NOATIME],
  ["MS_NODIRATIME", MS_NODIRATIME],
  ["MS_BIND", MS_BIND],
  ["MS_MOVE", MS_MOVE],
  ["MS_REC", MS_REC],
  ["MS_SILENT", MS_SILENT],
  ["MS_POSIXACL", MS_POSIXACL],
  ["MS_UNBINDABLE", MS_UNBINDABLE],
  ["MS_PRIVATE", MS_PRIVATE],
  ["MS_SLAVE", MS_SLAVE],
  ["MS_SHARED", MS_SHARED],
  ["MS_RELATIME", MS_RELATIME],
  ["MS_I_VERSION", MS_I_VERSION],
  ["MS_STRICTATIME", MS_STRICTATIME],
  ["MS_LAZYTIME", MS_LAZYTIME],
];

/**
 * Names the `MS_*` bits of `flags`, as runc does in its errors: known bits by
 * name, the rest as one hex number.
 *
 * @param flags `MS_*` flags.
 * @returns Such as `"MS_BIND|MS_REC|0x400000"`, or `""` for 0.
 *
 * @example Name some flags
 * ```ts
 * import { MS_BIND, MS_REC, stringifyMountFlags } from "../mod.ts";
 * stringifyMountFlags(MS_BIND | MS_REC); // "MS_BIND|MS_REC"
 * ```
 */
export function stringifyMountFlags(flags: number): string {
  const names: string[] = [];
  let seen = 0;
  for (const [name, bit] of FLAG_NAMES) {
    if ((flags & bit) === bit) {
      seen |= bit;
      names.push(name);
    }
  }
  const rest = (flags & ~seen) >>> 0;
  if (rest !== 0) names.push("0x" + rest.toString(16));
  return names.join("|");
}

/**
 * Checks the shape of a mount before any syscall: paths are strings without
 * NUL bytes, flags are an integer, and an id mapping is either a user
 * namespace path or two checked lists of ranges.
 *
 * @param mount The mount.
 * @param field Its name, for the error message.
 * @throws {TypeError} Naming the bad field.
 *
 * @example Reject a NUL byte
 * ```ts
 * import { assertMount } from "./mount.ts";
 * assertMount({ source: "/a\0b", destination: "/c", flags: 0 }, "mount"); // throws
 * ```
 */
export function assertMount(mount: unknown, field = "mount"): asserts mount is Mount {
  if (typeof mount !== "object" || mount === null) {
    throw new TypeError(`Invalid ${field}: expected an object, got ${describe(mount)}`);
  }
  const m = mount as Record<string, unknown>;
  // The names are built only when a check fails: this runs on every mountFd.
  if (typeof m.source !== "string" || m.source.includes("\0")) {
    assertPath(m.source, `${field}.source`);
  }
  if (typeof m.destination !== "string" || m.destination.includes("\0")) {
    assertPath(m.destination, `${field}.destination`);
  }
  if (typeof m.flags !== "number" || !Number.isInteger(m.flags)) {
    throw new TypeError(
      `Invalid ${field}.flags: expected an integer of MS_* bits, got ${describe(m.flags)}`,
    );
  }
  if (m.idMapping == null) return;
  const name = `${field}.idMapping`;
  if (typeof m.idMapping !== "object") {
    throw new TypeError(`Invalid ${name}: expected an object, got ${describe(m.idMapping)}`);
  }
  const { recursive, usernsPath, uidMappings, gidMappings } = m.idMapping as Record<
    string,
    unknown
  >;
  if (recursive !== undefined && typeof recursive !== "boolean") {
    throw new TypeError(
      `Invalid ${name}.recursive: expected a boolean, got ${describe(recursive)}`,
    );
  }
  if (usernsPath !== undefined) {
    assertPath(usernsPath, `${name}.usernsPath`);
    if (uidMappings !== undefined || gidMappings !== undefined) {
      throw new TypeError(
        `Invalid ${name}: usernsPath excludes uidMappings and gidMappings`,
      );
    }
    return;
  }
  checkIDMaps(uidMappings, `${name}.uidMappings`);
  checkIDMaps(gidMappings, `${name}.gidMappings`);
}
