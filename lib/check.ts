/**
 * Every check made before a syscall, each called once per entry point: the
 * shape of a mount, of its id mappings, of a target and of the options, as
 * `TypeError`s naming the bad field; and {@linkcode checkMount}, which also
 * says what kind of source a mount makes (a `MountError` for a mount no
 * source can carry). runc's validation rules, `MountError`s too, are in
 * `validate.ts` and use these.
 *
 * @module
 */

import { MountError } from "../ffi/mount_error.ts";
import { describe } from "./errors.ts";
import { checkIDMaps } from "./id_ranges.ts";
import { OwnedFd } from "./fd.ts";
import {
  BIND_REMOUNT_FLAGS,
  PROPAGATION_TYPES,
  REFUSED_BIND_FLAGS,
  stringifyMountFlags,
} from "./flags.ts";
import { MS_BIND, MS_REC, MS_SILENT } from "../ffi/constants.ts";
import { isBind, type Mount, type MountSourceType, type MountTarget } from "./mount.ts";

/**
 * Checks that `value` can be passed to C as a path: a string with no NUL
 * byte, which C would silently cut short.
 *
 * @param value The path.
 * @param what What the path is, for the error message, such as
 * `"mount.source"`.
 * @throws {TypeError} Naming `what`.
 */
export function assertPath(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Invalid ${what}: expected a string, got ${value === null ? "null" : typeof value}`,
    );
  }
  if (value.includes("\0")) {
    throw new TypeError(`Invalid ${what}: contains a NUL byte: ${JSON.stringify(value)}`);
  }
}

/**
 * Checks the shape of a mount: paths are strings without NUL bytes, flags
 * are an integer, an id mapping is either a user namespace path or two
 * checked lists of ranges, and `clearedFlags`, `propagationFlags` and
 * `recAttr` are what mount(2) and mount_setattr(2) take.
 *
 * @param mount The mount.
 * @param field Its name, for the error message.
 * @throws {TypeError} Naming the bad field.
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
  if (m.idMapping != null) assertIDMapping(m.idMapping, `${field}.idMapping`);
  if (m.clearedFlags !== undefined || m.propagationFlags !== undefined || m.recAttr !== undefined) {
    assertMountAttrs(m, field);
  }
}

function assertIDMapping(idMapping: unknown, name: string): void {
  if (typeof idMapping !== "object") {
    throw new TypeError(`Invalid ${name}: expected an object, got ${describe(idMapping)}`);
  }
  const { recursive, usernsPath, uidMappings, gidMappings } = idMapping as Record<
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

function assertMountAttrs(m: Record<string, unknown>, field: string): void {
  const { clearedFlags, propagationFlags, recAttr } = m;
  if (clearedFlags !== undefined && !Number.isInteger(clearedFlags)) {
    throw new TypeError(
      `Invalid ${field}.clearedFlags: expected an integer of MS_* bits, got ${
        describe(clearedFlags)
      }`,
    );
  }
  if (propagationFlags !== undefined) {
    if (!Array.isArray(propagationFlags)) {
      throw new TypeError(
        `Invalid ${field}.propagationFlags: expected an array, got ${describe(propagationFlags)}`,
      );
    }
    for (const [i, flag] of propagationFlags.entries()) {
      if (
        !Number.isInteger(flag) || !PROPAGATION_TYPES.includes(flag & ~(MS_REC | MS_SILENT))
      ) {
        throw new TypeError(
          `Invalid ${field}.propagationFlags[${i}]: expected one of MS_SHARED, MS_SLAVE, ` +
            `MS_PRIVATE or MS_UNBINDABLE, maybe with MS_REC, got ${describe(flag)}`,
        );
      }
    }
  }
  if (recAttr === undefined) return;
  if (typeof recAttr !== "object" || recAttr === null) {
    throw new TypeError(
      `Invalid ${field}.recAttr: expected an object, got ${describe(recAttr)}`,
    );
  }
  const attr = recAttr as Record<string, unknown>;
  for (const name of ["attrSet", "attrClr", "propagation"] as const) {
    const value = attr[name];
    if (!Number.isInteger(value) || (value as number) < 0) {
      throw new TypeError(
        `Invalid ${field}.recAttr.${name}: expected a non-negative integer, got ${describe(value)}`,
      );
    }
  }
  if (attr.propagation !== 0 && !PROPAGATION_TYPES.includes(attr.propagation as number)) {
    throw new TypeError(
      `Invalid ${field}.recAttr.propagation: expected 0 or one of MS_SHARED, MS_SLAVE, ` +
        `MS_PRIVATE or MS_UNBINDABLE, got ${describe(attr.propagation)}`,
    );
  }
}

const BIND_REC = MS_BIND | MS_REC;

/**
 * Whether a mount is a bare bind with nothing more to check: `flags`
 * exactly `MS_BIND` or `MS_BIND | MS_REC`, string paths with no NUL byte,
 * and no id mapping, cleared flags, propagation or `recAttr`. Every mount it
 * accepts, {@linkcode assertMount} accepts too, and `mountFd` makes an
 * `O_PATH` source of it; a mount it refuses is checked in full. It is the
 * hot path's one check: one function that calls none of ours (a test holds
 * it to the full checks).
 *
 * @param mount Anything.
 * @returns `true` for such a bare bind.
 *
 * @example The common case, and one that needs the full checks
 * ```ts
 * import { isBareBind } from "./check.ts";
 * import { MS_BIND, MS_RDONLY } from "../ffi/constants.ts";
 * isBareBind({ source: "/srv", destination: "/mnt", flags: MS_BIND }); // true
 * isBareBind({ source: "/srv", destination: "/mnt", flags: MS_BIND | MS_RDONLY }); // false
 * ```
 */
export function isBareBind(mount: unknown): mount is Mount {
  if (typeof mount !== "object" || mount === null) return false;
  const { source, destination, flags } = mount as Record<string, unknown>;
  const m = mount as Mount;
  return (flags === MS_BIND || flags === BIND_REC) &&
    typeof source === "string" && typeof destination === "string" &&
    m.idMapping == null && m.clearedFlags === undefined && m.propagationFlags === undefined &&
    m.recAttr === undefined && !source.includes("\0") && !destination.includes("\0");
}

/**
 * The one check of a mount before a source is made of it, and what kind of
 * source that is: `"plain-open"` for a bare bind (an `O_PATH` fd), else
 * `"open_tree"` (a detached mount that carries its id mapping, flags and
 * `recAttr`). The common bare bind takes one call, {@linkcode isBareBind};
 * anything else is checked in full.
 *
 * @param mount What should be a bind mount.
 * @param op The operation, for a `MountError`.
 * @returns The kind of source it makes.
 * @throws {TypeError} For a malformed mount ({@linkcode assertMount}).
 * @throws {MountError} For a mount that is not a bind mount (`only
 * bind-mounts are supported`, as runc says), or that has a flag a bind mount
 * can't carry: a flag is applied or refused, never silently dropped.
 *
 * @example A bare bind, and one with more to carry
 * ```ts
 * import { checkMount } from "./check.ts";
 * import { MS_BIND, MS_RDONLY } from "../ffi/constants.ts";
 * checkMount({ source: "/srv", destination: "/mnt", flags: MS_BIND }); // "plain-open"
 * checkMount({ source: "/srv", destination: "/mnt", flags: MS_BIND | MS_RDONLY }); // "open_tree"
 * ```
 */
export function checkMount(mount: unknown, op = "mountFd"): MountSourceType {
  return isBareBind(mount) ? "plain-open" : checkMountInFull(mount, op);
}

/**
 * {@linkcode checkMount} without its shortcut for a bare bind: every check,
 * for any mount (a test holds the shortcut to it).
 *
 * @param mount What should be a bind mount.
 * @param op The operation, for a `MountError`.
 * @returns The kind of source it makes.
 * @throws {TypeError} For a malformed mount.
 * @throws {MountError} For a mount no source can carry.
 *
 * @example The full checks of a bare bind
 * ```ts
 * import { checkMountInFull } from "./check.ts";
 * import { MS_BIND } from "../ffi/constants.ts";
 * checkMountInFull({ source: "/srv", destination: "/mnt", flags: MS_BIND }); // "plain-open"
 * ```
 */
export function checkMountInFull(mount: unknown, op = "mountFd"): MountSourceType {
  assertMount(mount);
  const names = { source: mount.source, target: mount.destination };
  if (!isBind(mount)) {
    throw new MountError(op, { ...names, detail: "new mount api: only bind-mounts are supported" });
  }
  const refused = mount.flags & REFUSED_BIND_FLAGS;
  if (refused !== 0) {
    throw new MountError(op, {
      ...names,
      detail: `a bind mount can't carry ${stringifyMountFlags(refused)}: ` +
        "a bind mount shares its filesystem, whose own flags are set where it is mounted",
    });
  }
  return mount.idMapping != null || mount.recAttr !== undefined || wantsFlags(mount)
    ? "open_tree"
    : "plain-open";
}

/**
 * Whether a mount's flags ask for more than a bind: runc's rule for
 * applying them (`clearedFlags` asks too, for a flag to be cleared).
 *
 * @param mount A checked mount.
 * @returns `true` if flags are to be applied.
 *
 * @example A read-only bind has flags to apply
 * ```ts
 * import { wantsFlags } from "./check.ts";
 * import { MS_BIND, MS_RDONLY } from "../ffi/constants.ts";
 * wantsFlags({ source: "/srv", destination: "/mnt", flags: MS_BIND | MS_RDONLY }); // true
 * ```
 */
export function wantsFlags(mount: Mount): boolean {
  return (mount.flags & BIND_REMOUNT_FLAGS) !== 0 || (mount.clearedFlags ?? 0) !== 0;
}

/**
 * Checks a target's shape.
 *
 * @param target What should be a {@linkcode MountTarget}.
 * @param field Its name, for the error.
 * @throws {TypeError} Naming the bad field.
 */
export function assertTarget(target: unknown, field = "target"): asserts target is MountTarget {
  if (typeof target === "string") return assertPath(target, field);
  if (typeof target !== "object" || target === null) {
    throw new TypeError(
      `Invalid ${field}: expected a path or { root, path }, got ${describe(target)}`,
    );
  }
  const { root, path } = target as Record<string, unknown>;
  if (root instanceof OwnedFd) {
    if (root.closed) throw new TypeError(`Invalid ${field}.root: the fd is closed`);
  } else {
    assertPath(root, `${field}.root`);
  }
  assertPath(path, `${field}.path`);
}

/** Checks that options, when given, are an object; returns its fields. */
function optionsOf(options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options: expected an object, got ${describe(options)}`);
  }
  return options as Record<string, unknown>;
}

function assertBoolean(value: unknown, field: string): void {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(`Invalid options.${field}: expected a boolean, got ${describe(value)}`);
  }
}

/**
 * Checks the options of an attach against their target: `create` is a
 * boolean, `owner` two ids, and `create` asks for nothing with a string target (a mount point is
 * created only inside a root); `sourceIn`, when `namespace` is set (a
 * `MountNamespace` call), is `"caller"` or `"namespace"`.
 *
 * @param options What should be attach options, or `undefined`.
 * @param target A checked target.
 * @param namespace Whether a `MountNamespace` call takes them.
 * @throws {TypeError} Naming the bad option.
 */
export function assertAttachOptions(
  options: unknown,
  target: MountTarget,
  namespace = false,
): void {
  const { create, sourceIn, owner } = optionsOf(options);
  if (namespace) assertSourceIn(sourceIn);
  assertBoolean(create, "create");
  if (owner !== undefined) assertOwner(owner);
  if (create === true && typeof target === "string") {
    throw new TypeError(
      "Invalid options.create: a mount point is created only inside a root: " +
        "pass the target as { root, path }",
    );
  }
}

/** Checks `owner`: `{ uid, gid }`, ids from 0 to 2^32 - 2. */
function assertOwner(owner: unknown): void {
  const { uid, gid } = (typeof owner === "object" && owner !== null ? owner : {}) as Record<
    string,
    unknown
  >;
  for (const [name, id] of [["uid", uid], ["gid", gid]] as const) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xfffffffe) {
      throw new TypeError(
        `Invalid options.owner.${name}: expected an id from 0 to 4294967294, got ${describe(id)}`,
      );
    }
  }
}

/**
 * Checks the options of an unmount: `detach` is a boolean.
 *
 * @param options What should be unmount options, or `undefined`.
 * @throws {TypeError} For a non-boolean `detach`.
 */
export function assertUnmountOptions(options: unknown): void {
  assertBoolean(optionsOf(options).detach, "detach");
}

/**
 * Checks the options of a `MountNamespace.mountFd`: `sourceIn`.
 *
 * @param options What should be its options, or `undefined`.
 * @throws {TypeError} For a `sourceIn` other than `"caller"` or `"namespace"`.
 */
export function assertSourceOptions(options: unknown): void {
  assertSourceIn(optionsOf(options).sourceIn);
}

function assertSourceIn(sourceIn: unknown): void {
  if (sourceIn === undefined || sourceIn === "caller" || sourceIn === "namespace") return;
  throw new TypeError(
    `Invalid options.sourceIn: expected "caller" or "namespace", got ${describe(sourceIn)}`,
  );
}
