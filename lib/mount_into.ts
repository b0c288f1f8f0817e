/**
 * The whole mount: a mount source attached with its flags, propagation and
 * recursive attributes, as runc's rootfs code makes a bind mount.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  MNT_DETACH,
  MOUNT_ATTR__ATIME,
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
  MS_MANDLOCK,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
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
  ST_MANDLOCK,
  ST_NOATIME,
  ST_NODEV,
  ST_NODIRATIME,
  ST_NOEXEC,
  ST_NOSUID,
  ST_NOSYMFOLLOW,
  ST_RDONLY,
  ST_RELATIME,
  ST_SYNCHRONOUS,
} from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import {
  assertPath,
  fstatfsFlags,
  mount as mountCall,
  type MountAttrStruct,
  mountSetattr,
  type PathNames,
  umount2,
} from "../ffi/syscalls.ts";
import { attachFd } from "./attach.ts";
import { describe } from "./errors.ts";
import { assertMount, type Mount, stringifyMountFlags } from "./mount.ts";
import { mountFd, type MountFdOptions, type MountSourceType } from "./mount_fd.ts";

/**
 * Options of {@linkcode mountInto}: those of {@linkcode mountFd}.
 *
 * @example Share user namespaces across mounts
 * ```ts
 * import { Handles, type MountIntoOptions } from "../mod.ts";
 * using handles = new Handles();
 * const options: MountIntoOptions = { handles, signal: AbortSignal.timeout(5000) };
 * ```
 */
export interface MountIntoOptions extends MountFdOptions {}

/**
 * Makes the whole mount at `target`, in the caller's mount namespace: the
 * source of {@linkcode mountFd}, then its `MS_*` flags, its propagation and
 * its `recAttr`, as runc's rootfs code makes a bind mount.
 *
 * - An id-mapped (`"open_tree"`) source gets its flags (`MS_RDONLY`,
 *   `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, the atime flags, `MS_NOSYMFOLLOW`)
 *   and the attributes of `recAttr` on the detached tree, with
 *   mount_setattr(2), before move_mount(2) attaches it: it never shows
 *   without them. Propagation follows the attach, since the kernel makes a
 *   tree attached under a shared mount shared, and refuses to attach an
 *   unbindable one there.
 * - A plain source is bind-mounted, then bind-remounted with its flags
 *   (`MS_BIND|MS_REMOUNT`), then given its propagation and `recAttr`
 *   (mount_setattr(2) with `AT_RECURSIVE`).
 *
 * The flags apply to the top mount, as `mount --bind -o` does: the ones
 * given are set and the others cleared, and the atime setting is kept
 * unless one is given (runc's rule: an atime flag clears
 * `MOUNT_ATTR__ATIME`). They are applied only when `flags` holds more than
 * `MS_BIND|MS_REC`, or `clearedFlags` is set. If the kernel refuses with
 * EPERM because the source has flags locked by a less privileged mount
 * namespace, the locked flags are kept and the call retried, as runc does,
 * unless `clearedFlags` asks to clear one or another atime setting is asked.
 *
 * A failure after the attach detaches the mount again (`MNT_DETACH`).
 *
 * @param mount A bind mount.
 * @param target The mount point, an existing directory or file.
 * @param options The user namespace cache, and an abort signal.
 * @throws {TypeError} For a malformed mount or target, before any syscall.
 * @throws {MountError} Naming the step that failed, such as `"mount_setattr"`,
 * `"move_mount"`, `"mount(MS_BIND|MS_REMOUNT)"` or `"mount(MS_SHARED)"`.
 * @throws The signal's reason, once aborted.
 *
 * @example A read-only, id-mapped bind mount
 * ```ts
 * import { Handles, mountInto, MS_BIND, MS_RDONLY } from "../mod.ts";
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
 * }, "/run/container/rootfs/data", { handles });
 * ```
 */
export async function mountInto(
  mount: Mount,
  target: string,
  options: MountIntoOptions = {},
): Promise<void> {
  assertMountAttrs(mount);
  assertPath(target, "target");
  try {
    using source = await mountFd(mount, options);
    options.signal?.throwIfAborted();
    completeMount(source.type, source.fd, mount, target);
  } catch (error) {
    throw PermissionError.in(error, "mountInto");
  }
}

const PROPAGATION_TYPES = [MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE];

/**
 * Checks a mount for {@linkcode mountInto}: what {@linkcode mountFd} checks,
 * and `clearedFlags`, `propagationFlags` and `recAttr`.
 *
 * @param mount The mount.
 * @throws {TypeError} Naming the bad field.
 */
export function assertMountAttrs(mount: Mount): void {
  assertMount(mount);
  const { clearedFlags, propagationFlags, recAttr } = mount;
  if (clearedFlags !== undefined && !Number.isInteger(clearedFlags)) {
    throw new TypeError(
      `Invalid mount.clearedFlags: expected an integer of MS_* bits, got ${describe(clearedFlags)}`,
    );
  }
  if (propagationFlags !== undefined) {
    if (!Array.isArray(propagationFlags)) {
      throw new TypeError(
        `Invalid mount.propagationFlags: expected an array, got ${describe(propagationFlags)}`,
      );
    }
    for (const [i, flag] of propagationFlags.entries()) {
      if (
        !Number.isInteger(flag) || !PROPAGATION_TYPES.includes(flag & ~(MS_REC | MS_SILENT))
      ) {
        throw new TypeError(
          `Invalid mount.propagationFlags[${i}]: expected one of MS_SHARED, MS_SLAVE, ` +
            `MS_PRIVATE or MS_UNBINDABLE, maybe with MS_REC, got ${describe(flag)}`,
        );
      }
    }
  }
  if (recAttr === undefined) return;
  if (typeof recAttr !== "object" || recAttr === null) {
    throw new TypeError(`Invalid mount.recAttr: expected an object, got ${describe(recAttr)}`);
  }
  for (const field of ["attrSet", "attrClr", "propagation"] as const) {
    if (!Number.isInteger(recAttr[field]) || recAttr[field] < 0) {
      throw new TypeError(
        `Invalid mount.recAttr.${field}: expected a non-negative integer, got ${
          describe(recAttr[field])
        }`,
      );
    }
  }
  if (recAttr.propagation !== 0 && !PROPAGATION_TYPES.includes(recAttr.propagation)) {
    throw new TypeError(
      `Invalid mount.recAttr.propagation: expected 0 or one of MS_SHARED, MS_SLAVE, ` +
        `MS_PRIVATE or MS_UNBINDABLE, got ${describe(recAttr.propagation)}`,
    );
  }
}

/**
 * Attaches a mount source fd at `target` with its flags, propagation and
 * `recAttr`, in the calling thread's mount namespace, as
 * {@linkcode mountInto} describes. Synchronous, so that a Worker can run it
 * on its own thread. The fd stays open.
 *
 * @param type The kind of fd.
 * @param fd The fd, from {@linkcode mountFd} for `mount`.
 * @param mount The mount, checked with {@linkcode assertMountAttrs}.
 * @param target The mount point.
 * @throws {MountError} Naming the step that failed; the mount is detached
 * if it was attached.
 */
export function completeMount(
  type: MountSourceType,
  fd: number,
  mount: Mount,
  target: string,
): void {
  const names = { source: mount.source, target };
  if (type === "open_tree") {
    if (wantsFlags(mount)) {
      withLockedFlags(
        mount,
        fd,
        names,
        (flags) =>
          mountSetattr(fd, "", AT_EMPTY_PATH, flagsToAttr(flags), {
            ...names,
            op: "mount_setattr",
          }),
      );
    }
    const attr = recAttrStruct(mount);
    if (attr !== undefined && (attr.attrSet !== 0 || attr.attrClr !== 0)) {
      mountSetattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, { ...attr, propagation: 0 }, {
        ...names,
        op: "mount_setattr(AT_RECURSIVE)",
      });
    }
    attachFd(type, fd, mount, target);
    detachOnFailure(target, () => {
      setPropagation(mount, target, names);
      if (attr !== undefined && attr.propagation !== 0) {
        mountSetattr(AT_FDCWD, target, AT_RECURSIVE, {
          attrSet: 0,
          propagation: attr.propagation,
        }, { ...names, op: "mount_setattr(AT_RECURSIVE)" });
      }
    });
    return;
  }
  attachFd(type, fd, mount, target);
  detachOnFailure(target, () => {
    if (wantsFlags(mount)) {
      withLockedFlags(
        mount,
        fd,
        names,
        (flags) =>
          mountCall(null, target, null, flags | MS_BIND | MS_REMOUNT, null, {
            ...names,
            op: "mount(MS_BIND|MS_REMOUNT)",
          }),
      );
    }
    setPropagation(mount, target, names);
    const attr = recAttrStruct(mount);
    if (attr !== undefined) {
      mountSetattr(AT_FDCWD, target, AT_RECURSIVE, attr, {
        ...names,
        op: "mount_setattr(AT_RECURSIVE)",
      });
    }
  });
}

/** runc's rule: the flags are applied only if any is given beyond a bind. */
function wantsFlags(mount: Mount): boolean {
  return (mount.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) !== 0 ||
    (mount.clearedFlags ?? 0) !== 0;
}

function setPropagation(mount: Mount, target: string, names: PathNames): void {
  for (const flag of mount.propagationFlags ?? []) {
    mountCall(null, target, null, flag, null, {
      ...names,
      op: `mount(${stringifyMountFlags(flag)})`,
    });
  }
}

/** `recAttr` as a struct, with runc's atime rule applied, or `undefined`. */
function recAttrStruct(mount: Mount): MountAttrStruct | undefined {
  const attr = mount.recAttr;
  if (attr === undefined) return undefined;
  let attrClr = attr.attrClr;
  // An atime setting is an enum: to change it, clear the whole field.
  if ((attr.attrSet | attr.attrClr) & MOUNT_ATTR__ATIME) attrClr |= MOUNT_ATTR__ATIME;
  return { attrSet: attr.attrSet, attrClr, propagation: attr.propagation };
}

/** Runs the steps after an attach; on a failure, detaches what was attached. */
function detachOnFailure(target: string, steps: () => void): void {
  try {
    steps();
  } catch (error) {
    try {
      umount2(target, MNT_DETACH);
    } catch (undo) {
      if (error instanceof Error) {
        error.message += ` (and detaching it again failed: ${
          undo instanceof Error ? undo.message : String(undo)
        })`;
      }
    }
    throw error;
  }
}

const BIND_ATTRS: ReadonlyArray<readonly [number, number]> = [
  [MS_RDONLY, MOUNT_ATTR_RDONLY],
  [MS_NOSUID, MOUNT_ATTR_NOSUID],
  [MS_NODEV, MOUNT_ATTR_NODEV],
  [MS_NOEXEC, MOUNT_ATTR_NOEXEC],
  [MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW],
];

const ATIME_ENUM_FLAGS = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;
const ATIME_FLAGS = ATIME_ENUM_FLAGS | MS_NODIRATIME;
/** The flags a less privileged mount namespace gets locked (MNT_LOCK_*). */
const LOCK_FLAGS = MS_RDONLY | MS_NODEV | MS_NOEXEC | MS_NOSUID | ATIME_FLAGS;

/**
 * The mount_setattr(2) attributes that give a mount what
 * `mount(MS_BIND|MS_REMOUNT|flags)` would: the flags given set, the others
 * cleared, the atime setting kept unless one is given.
 *
 * @param flags `MS_*` flags.
 * @returns The attributes to set and clear.
 */
export function flagsToAttr(flags: number): MountAttrStruct {
  let attrSet = 0;
  let attrClr = 0;
  for (const [ms, attr] of BIND_ATTRS) {
    if (flags & ms) attrSet |= attr;
    else attrClr |= attr;
  }
  if (flags & ATIME_FLAGS) {
    // As the kernel reads a remount: strictatime wins over noatime, and
    // relatime is the default.
    attrClr |= MOUNT_ATTR__ATIME;
    attrSet |= flags & MS_STRICTATIME
      ? MOUNT_ATTR_STRICTATIME
      : flags & MS_NOATIME
      ? MOUNT_ATTR_NOATIME
      : MOUNT_ATTR_RELATIME;
    if (flags & MS_NODIRATIME) attrSet |= MOUNT_ATTR_NODIRATIME;
    else attrClr |= MOUNT_ATTR_NODIRATIME;
  }
  return { attrSet, attrClr };
}

const STATFS_FLAGS: ReadonlyArray<readonly [number, number]> = [
  [ST_RDONLY, MS_RDONLY],
  [ST_NOSUID, MS_NOSUID],
  [ST_NODEV, MS_NODEV],
  [ST_NOEXEC, MS_NOEXEC],
  [ST_MANDLOCK, MS_MANDLOCK],
  [ST_SYNCHRONOUS, MS_SYNCHRONOUS],
  [ST_NOATIME, MS_NOATIME],
  [ST_NODIRATIME, MS_NODIRATIME],
  [ST_RELATIME, MS_RELATIME],
  [ST_NOSYMFOLLOW, MS_NOSYMFOLLOW],
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
  if ((flags & ATIME_ENUM_FLAGS) === 0) flags |= MS_STRICTATIME;
  return flags;
}

/**
 * Applies the flags of `mount`; if the kernel refuses with EPERM, keeps the
 * flags the source has locked and tries again, as runc does.
 */
function withLockedFlags(
  mount: Mount,
  fd: number,
  names: PathNames,
  apply: (flags: number) => void,
): void {
  try {
    apply(mount.flags);
    return;
  } catch (error) {
    if (!(error instanceof MountError) || error.code !== "EPERM") throw error;
    const source = statfsToMountFlags(fstatfsFlags(fd, names));
    const refuse = (hint: string) =>
      new MountError(error.op, {
        errno: error.errno,
        source: error.source,
        target: error.target,
        hint,
        cause: error,
      });
    const cannotClear = source & (mount.clearedFlags ?? 0) & LOCK_FLAGS;
    if (cannotClear !== 0) {
      throw refuse(`(cannot clear locked flags ${stringifyMountFlags(cannotClear)})`);
    }
    const atime = mount.flags & ATIME_FLAGS;
    if (atime !== 0 && atime !== (source & ATIME_FLAGS)) {
      throw refuse(
        `(cannot change locked atime flags ${stringifyMountFlags(source & ATIME_FLAGS)})`,
      );
    }
    const locked = source & LOCK_FLAGS;
    try {
      apply(mount.flags | locked);
    } catch (retry) {
      if (!(retry instanceof MountError)) throw retry;
      throw new MountError(retry.op, {
        errno: retry.errno,
        source: retry.source,
        target: retry.target,
        hint: `(with the locked flags ${stringifyMountFlags(locked)} re-applied)`,
        cause: retry,
      });
    }
  }
}
