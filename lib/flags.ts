/**
 * Every table of mount flags, in one place: `MS_*` names, the OCI option
 * table of runc's specconv, and the translations between `MS_*` flags,
 * `MOUNT_ATTR_*` attributes and statfs(2)'s `ST_*` flags.
 *
 * @module
 */

import * as k from "../ffi/constants.ts";

const MS_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["MS_RDONLY", k.MS_RDONLY],
  ["MS_NOSUID", k.MS_NOSUID],
  ["MS_NODEV", k.MS_NODEV],
  ["MS_NOEXEC", k.MS_NOEXEC],
  ["MS_SYNCHRONOUS", k.MS_SYNCHRONOUS],
  ["MS_REMOUNT", k.MS_REMOUNT],
  ["MS_MANDLOCK", k.MS_MANDLOCK],
  ["MS_DIRSYNC", k.MS_DIRSYNC],
  ["MS_NOSYMFOLLOW", k.MS_NOSYMFOLLOW],
  ["MS_NOATIME", k.MS_NOATIME],
  ["MS_NODIRATIME", k.MS_NODIRATIME],
  ["MS_BIND", k.MS_BIND],
  ["MS_MOVE", k.MS_MOVE],
  ["MS_REC", k.MS_REC],
  ["MS_SILENT", k.MS_SILENT],
  ["MS_POSIXACL", k.MS_POSIXACL],
  ["MS_UNBINDABLE", k.MS_UNBINDABLE],
  ["MS_PRIVATE", k.MS_PRIVATE],
  ["MS_SLAVE", k.MS_SLAVE],
  ["MS_SHARED", k.MS_SHARED],
  ["MS_RELATIME", k.MS_RELATIME],
  ["MS_I_VERSION", k.MS_I_VERSION],
  ["MS_STRICTATIME", k.MS_STRICTATIME],
  ["MS_LAZYTIME", k.MS_LAZYTIME],
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
 * import { MS_BIND, MS_REC, stringifyMountFlags } from "@mountfd/mountfd";
 * stringifyMountFlags(MS_BIND | MS_REC); // "MS_BIND|MS_REC"
 * ```
 */
export function stringifyMountFlags(flags: number): string {
  const names: string[] = [];
  let seen = 0;
  for (const [name, bit] of MS_NAMES) {
    if ((flags & bit) === bit) {
      seen |= bit;
      names.push(name);
    }
  }
  const rest = (flags & ~seen) >>> 0;
  if (rest !== 0) names.push("0x" + rest.toString(16));
  return names.join("|");
}

/** The propagation types, each of which may be combined with `MS_REC`. */
export const PROPAGATION_TYPES: readonly number[] = [
  k.MS_SHARED,
  k.MS_SLAVE,
  k.MS_PRIVATE,
  k.MS_UNBINDABLE,
];

/** The per-mount flags a bind remount sets (and mount_setattr(2) can). */
export const BIND_REMOUNT_FLAGS: number = k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC |
  k.MS_NOATIME | k.MS_NODIRATIME | k.MS_RELATIME | k.MS_STRICTATIME | k.MS_NOSYMFOLLOW;

/** Flags a bind mount can't carry: a filesystem's own (its superblock's), and `MS_MOVE`. */
export const REFUSED_BIND_FLAGS: number = k.MS_SYNCHRONOUS | k.MS_MANDLOCK | k.MS_DIRSYNC |
  k.MS_POSIXACL | k.MS_I_VERSION | k.MS_LAZYTIME | k.MS_MOVE;

/** The propagation bits of `MS_*` flags. */
export const PROPAGATION_FLAGS: number = k.MS_SHARED | k.MS_SLAVE | k.MS_PRIVATE |
  k.MS_UNBINDABLE;

/** The atime settings that exclude each other. */
const ATIME_ENUM_FLAGS = k.MS_NOATIME | k.MS_RELATIME | k.MS_STRICTATIME;
/** Every atime flag. */
export const ATIME_FLAGS: number = ATIME_ENUM_FLAGS | k.MS_NODIRATIME;
/** The flags a less privileged mount namespace gets locked (the kernel's MNT_LOCK_*). */
export const LOCK_FLAGS: number = k.MS_RDONLY | k.MS_NODEV | k.MS_NOEXEC | k.MS_NOSUID |
  ATIME_FLAGS;

/** runc's `EXT_COPYUP` extension: the `tmpcopyup` option. */
export const EXT_COPYUP = 1;

/**
 * What one OCI mount option does, in runc's specconv:
 * - `flag`: sets, or with `clear` clears, `MS_*` bits (`defaults` has none);
 * - `propagation`: adds a propagation type;
 * - `recAttr`: sets, or with `clear` clears, `MOUNT_ATTR_*` bits recursively;
 * - `extension`: a runtime extension bit;
 * - `idmap`: id-maps the mount, recursively for `ridmap`.
 */
export type MountOption =
  | { readonly kind: "flag"; readonly clear: boolean; readonly bits: number }
  | { readonly kind: "propagation"; readonly flag: number }
  | { readonly kind: "recAttr"; readonly clear: boolean; readonly bits: number }
  | { readonly kind: "extension"; readonly bits: number }
  | { readonly kind: "idmap"; readonly recursive: boolean };

const set = (bits: number): MountOption => ({ kind: "flag", clear: false, bits });
const clear = (bits: number): MountOption => ({ kind: "flag", clear: true, bits });
const rset = (bits: number): MountOption => ({ kind: "recAttr", clear: false, bits });
const rclear = (bits: number): MountOption => ({ kind: "recAttr", clear: true, bits });
const propagation = (flag: number): MountOption => ({ kind: "propagation", flag });

/** Every option {@linkcode mountFromSpec} knows; others go to `data`. */
export const MOUNT_OPTIONS: Readonly<Record<string, MountOption>> = {
  async: clear(k.MS_SYNCHRONOUS),
  atime: clear(k.MS_NOATIME),
  bind: set(k.MS_BIND),
  defaults: set(0),
  dev: clear(k.MS_NODEV),
  diratime: clear(k.MS_NODIRATIME),
  dirsync: set(k.MS_DIRSYNC),
  exec: clear(k.MS_NOEXEC),
  iversion: set(k.MS_I_VERSION),
  lazytime: set(k.MS_LAZYTIME),
  loud: clear(k.MS_SILENT),
  mand: set(k.MS_MANDLOCK),
  noatime: set(k.MS_NOATIME),
  nodev: set(k.MS_NODEV),
  nodiratime: set(k.MS_NODIRATIME),
  noexec: set(k.MS_NOEXEC),
  noiversion: clear(k.MS_I_VERSION),
  nolazytime: clear(k.MS_LAZYTIME),
  nomand: clear(k.MS_MANDLOCK),
  norelatime: clear(k.MS_RELATIME),
  nostrictatime: clear(k.MS_STRICTATIME),
  nosuid: set(k.MS_NOSUID),
  nosymfollow: set(k.MS_NOSYMFOLLOW),
  rbind: set(k.MS_BIND | k.MS_REC),
  relatime: set(k.MS_RELATIME),
  remount: set(k.MS_REMOUNT),
  ro: set(k.MS_RDONLY),
  rw: clear(k.MS_RDONLY),
  silent: set(k.MS_SILENT),
  strictatime: set(k.MS_STRICTATIME),
  suid: clear(k.MS_NOSUID),
  sync: set(k.MS_SYNCHRONOUS),
  symfollow: clear(k.MS_NOSYMFOLLOW),

  rprivate: propagation(k.MS_PRIVATE | k.MS_REC),
  private: propagation(k.MS_PRIVATE),
  rslave: propagation(k.MS_SLAVE | k.MS_REC),
  slave: propagation(k.MS_SLAVE),
  rshared: propagation(k.MS_SHARED | k.MS_REC),
  shared: propagation(k.MS_SHARED),
  runbindable: propagation(k.MS_UNBINDABLE | k.MS_REC),
  unbindable: propagation(k.MS_UNBINDABLE),

  rro: rset(k.MOUNT_ATTR_RDONLY),
  rrw: rclear(k.MOUNT_ATTR_RDONLY),
  rnosuid: rset(k.MOUNT_ATTR_NOSUID),
  rsuid: rclear(k.MOUNT_ATTR_NOSUID),
  rnodev: rset(k.MOUNT_ATTR_NODEV),
  rdev: rclear(k.MOUNT_ATTR_NODEV),
  rnoexec: rset(k.MOUNT_ATTR_NOEXEC),
  rexec: rclear(k.MOUNT_ATTR_NOEXEC),
  rnodiratime: rset(k.MOUNT_ATTR_NODIRATIME),
  rdiratime: rclear(k.MOUNT_ATTR_NODIRATIME),
  rrelatime: rset(k.MOUNT_ATTR_RELATIME),
  rnorelatime: rclear(k.MOUNT_ATTR_RELATIME),
  rnoatime: rset(k.MOUNT_ATTR_NOATIME),
  ratime: rclear(k.MOUNT_ATTR_NOATIME),
  rstrictatime: rset(k.MOUNT_ATTR_STRICTATIME),
  rnostrictatime: rclear(k.MOUNT_ATTR_STRICTATIME),
  rnosymfollow: rset(k.MOUNT_ATTR_NOSYMFOLLOW),
  rsymfollow: rclear(k.MOUNT_ATTR_NOSYMFOLLOW),

  tmpcopyup: { kind: "extension", bits: EXT_COPYUP },
  idmap: { kind: "idmap", recursive: false },
  ridmap: { kind: "idmap", recursive: true },
};

/**
 * Every option {@linkcode mountFromSpec} knows, sorted; others go to `data`.
 *
 * @example Is an option known?
 * ```ts
 * import { KNOWN_MOUNT_OPTIONS } from "@mountfd/mountfd";
 * KNOWN_MOUNT_OPTIONS.includes("rbind"); // true
 * ```
 */
export const KNOWN_MOUNT_OPTIONS: readonly string[] = Object.keys(MOUNT_OPTIONS).sort();

/** The `MS_*` flags a bind remount takes, and their `MOUNT_ATTR_*` twins. */
const BIND_ATTRS: ReadonlyArray<readonly [number, number]> = [
  [k.MS_RDONLY, k.MOUNT_ATTR_RDONLY],
  [k.MS_NOSUID, k.MOUNT_ATTR_NOSUID],
  [k.MS_NODEV, k.MOUNT_ATTR_NODEV],
  [k.MS_NOEXEC, k.MOUNT_ATTR_NOEXEC],
  [k.MS_NOSYMFOLLOW, k.MOUNT_ATTR_NOSYMFOLLOW],
];

/** The fields of `struct mount_attr` that {@linkcode flagsToAttr} fills. */
export interface AttrChange {
  /** `MOUNT_ATTR_*` bits to set. */
  attrSet: number;
  /** `MOUNT_ATTR_*` bits to clear. */
  attrClr: number;
}

/**
 * The mount_setattr(2) attributes that give a mount what
 * `mount(MS_BIND|MS_REMOUNT|flags)` would: the flags given set, the others
 * cleared, the atime setting kept unless one is given.
 *
 * @param flags `MS_*` flags.
 * @returns The attributes to set and clear.
 */
export function flagsToAttr(flags: number): AttrChange {
  let attrSet = 0;
  let attrClr = 0;
  for (const [ms, attr] of BIND_ATTRS) {
    if (flags & ms) attrSet |= attr;
    else attrClr |= attr;
  }
  if (flags & ATIME_FLAGS) {
    // As the kernel reads a remount: strictatime wins over noatime, and
    // relatime is the default.
    attrClr |= k.MOUNT_ATTR__ATIME;
    attrSet |= flags & k.MS_STRICTATIME
      ? k.MOUNT_ATTR_STRICTATIME
      : flags & k.MS_NOATIME
      ? k.MOUNT_ATTR_NOATIME
      : k.MOUNT_ATTR_RELATIME;
    if (flags & k.MS_NODIRATIME) attrSet |= k.MOUNT_ATTR_NODIRATIME;
    else attrClr |= k.MOUNT_ATTR_NODIRATIME;
  }
  return { attrSet, attrClr };
}

/**
 * A recursive attribute change with runc's atime rule applied: an atime
 * setting is an enum, so changing it clears the whole field.
 *
 * @param attr The bits to set and clear.
 * @returns The change to make.
 */
export function recAttrChange(attr: AttrChange): AttrChange {
  let attrClr = attr.attrClr;
  if ((attr.attrSet | attr.attrClr) & k.MOUNT_ATTR__ATIME) attrClr |= k.MOUNT_ATTR__ATIME;
  return { attrSet: attr.attrSet, attrClr };
}

const STATFS_FLAGS: ReadonlyArray<readonly [number, number]> = [
  [k.ST_RDONLY, k.MS_RDONLY],
  [k.ST_NOSUID, k.MS_NOSUID],
  [k.ST_NODEV, k.MS_NODEV],
  [k.ST_NOEXEC, k.MS_NOEXEC],
  [k.ST_MANDLOCK, k.MS_MANDLOCK],
  [k.ST_SYNCHRONOUS, k.MS_SYNCHRONOUS],
  [k.ST_NOATIME, k.MS_NOATIME],
  [k.ST_NODIRATIME, k.MS_NODIRATIME],
  [k.ST_RELATIME, k.MS_RELATIME],
  [k.ST_NOSYMFOLLOW, k.MS_NOSYMFOLLOW],
];

/**
 * The `MS_*` flags of a mount, from its statfs(2) `f_flags`. A mount with no
 * atime flag is strictatime, which statfs does not report.
 *
 * @param stFlags `ST_*` flags.
 * @returns `MS_*` flags.
 */
export function statfsToMountFlags(stFlags: number): number {
  let flags = 0;
  for (const [st, ms] of STATFS_FLAGS) if (stFlags & st) flags |= ms;
  if ((flags & ATIME_ENUM_FLAGS) === 0) flags |= k.MS_STRICTATIME;
  return flags;
}
