/**
 * Input checks, made before any syscall: the shape of a mount and of its id
 * mappings, as `TypeError`s naming the bad field. runc's validation rules,
 * which are `MountError`s, are in `validate.ts` and use these.
 *
 * @module
 */

import { MountError } from "../ffi/mount_error.ts";
import { describe } from "./errors.ts";
import { PROPAGATION_TYPES } from "./flags.ts";
import { MS_BIND, MS_REC, MS_SILENT } from "../ffi/constants.ts";
import { type IDMap, isBind, type Mapping, type Mount } from "./mount.ts";

/** The most entries a `uid_map` or `gid_map` may hold (Linux 4.15 and later). */
const MAX_ID_MAP_ENTRIES = 340;
/** The kernel takes a map's text in one write of less than a page. */
const MAX_MAP_TEXT = 4095;
/** The longest line a range can take: three 10-digit numbers, 2 spaces, a newline. */
const MAX_LINE = 33;
const ID_LIMIT = 2 ** 32;

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
 * Refuses a mount that is not a bind mount, as runc's `mountFd` does.
 *
 * @param mount A checked mount.
 * @param op The operation, for the error.
 * @throws {MountError} `only bind-mounts are supported`.
 */
export function assertBind(mount: Mount, op = "mountFd"): void {
  if (isBind(mount)) return;
  throw new MountError(op, {
    source: mount.source,
    target: mount.destination,
    detail: "new mount api: only bind-mounts are supported",
  });
}

/** Whether `value` is an integer from `min` to 2^32 - 2 + `min`. */
function inRange(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min &&
    value < ID_LIMIT - 1 + min;
}

function badNumber(value: unknown, field: string, min: number): TypeError {
  const range = min === 0 ? "0 to 4294967294" : "1 to 4294967295";
  return new TypeError(
    `Invalid ${field}: expected an integer from ${range}, got ${describe(value)}`,
  );
}

function badEnd(name: string, key: string, end: number): TypeError {
  return new TypeError(`Invalid ${name}: ${key} + size must be below 2^32, got ${end}`);
}

function assertList(maps: unknown, field: string): asserts maps is unknown[] {
  if (!Array.isArray(maps)) {
    throw new TypeError(
      `Invalid ${field}: expected an array of { containerID, hostID, size }, got ${describe(maps)}`,
    );
  }
}

function assertEntry(entry: unknown, field: string, i: number): asserts entry is object {
  if (typeof entry !== "object" || entry === null) {
    throw new TypeError(
      `Invalid ${field}[${i}]: expected { containerID, hostID, size }, got ${describe(entry)}`,
    );
  }
}

/** Checks entry `i` of a list; its name is built only for an error. */
function checkEntry(entry: unknown, field: string, i: number): void {
  assertEntry(entry, field, i);
  const { containerID, hostID, size } = entry as Record<string, unknown>;
  if (!inRange(size, 1)) throw badNumber(size, `${field}[${i}].size`, 1);
  if (!inRange(containerID, 0)) throw badNumber(containerID, `${field}[${i}].containerID`, 0);
  if (containerID + size >= ID_LIMIT) {
    throw badEnd(`${field}[${i}]`, "containerID", containerID + size);
  }
  if (!inRange(hostID, 0)) throw badNumber(hostID, `${field}[${i}].hostID`, 0);
  if (hostID + size >= ID_LIMIT) throw badEnd(`${field}[${i}]`, "hostID", hostID + size);
}

function checkOverlap(maps: IDMap[], field: string, side: keyof IDMap): void {
  if (maps.length < 2) return;
  const order = maps.map((_, i) => i).sort((a, b) => maps[a][side] - maps[b][side]);
  for (let k = 1; k < order.length; k++) {
    const prev = maps[order[k - 1]];
    if (prev[side] + prev.size > maps[order[k]][side]) {
      const [i, j] = [order[k - 1], order[k]].sort((a, b) => a - b);
      throw new TypeError(
        `Invalid ${field}: entries ${i} and ${j} overlap in ${side}`,
      );
    }
  }
}

/**
 * Checks a list of id ranges as the kernel checks a `uid_map` write: 1 to 340
 * entries of integer ids below 2^32 - 1, sizes of at least 1, `id + size`
 * below 2^32, no two ranges overlapping on either side, and less than a
 * page (4 KiB) of text.
 *
 * @param maps The list.
 * @param field Its name, for the error message, such as
 * `"idMapping.uidMappings"`.
 * @returns `maps`, typed.
 * @throws {TypeError} Naming the bad field, such as
 * `Invalid idMapping.uidMappings[0].size: expected an integer from 1 to
 * 4294967295, got 0`.
 */
export function checkIDMaps(maps: unknown, field: string): IDMap[] {
  assertList(maps, field);
  if (maps.length === 0) {
    throw new TypeError(`Invalid ${field}: needs at least one entry`);
  }
  if (maps.length > MAX_ID_MAP_ENTRIES) {
    throw new TypeError(
      `Invalid ${field}: the kernel takes at most ${MAX_ID_MAP_ENTRIES} entries, got ${maps.length}`,
    );
  }
  for (let i = 0; i < maps.length; i++) checkEntry(maps[i], field, i);
  const checked = maps as IDMap[];
  checkOverlap(checked, field, "containerID");
  checkOverlap(checked, field, "hostID");
  if (checked.length * MAX_LINE > MAX_MAP_TEXT) {
    const bytes = checked.reduce(
      (n, m) => n + `${m.containerID} ${m.hostID} ${m.size}\n`.length,
      0,
    );
    if (bytes > MAX_MAP_TEXT) {
      throw new TypeError(
        `Invalid ${field}: the kernel takes at most ${MAX_MAP_TEXT} bytes of map text, ` +
          `these ${checked.length} entries make ${bytes}`,
      );
    }
  }
  return checked;
}

/**
 * Copies a list of id ranges, checking only its shape (an array of objects):
 * for a conversion whose result is checked later, as an OCI spec's is.
 *
 * @param maps The list.
 * @param field Its name, for the error message.
 * @returns A copy of each range's three fields.
 * @throws {TypeError} For something other than an array of objects.
 */
export function copyIDMaps(maps: unknown, field: string): IDMap[] {
  assertList(maps, field);
  return maps.map((entry, i) => {
    assertEntry(entry, field, i);
    const { containerID, hostID, size } = entry as IDMap;
    return { containerID, hostID, size };
  });
}

/**
 * Checks both lists of a mapping with {@linkcode checkIDMaps}.
 *
 * @param mapping The mapping.
 * @param field Its name, for the error message.
 * @returns `mapping`, typed.
 * @throws {TypeError} Naming the bad field.
 */
export function checkMapping(mapping: unknown, field: string): Mapping {
  if (typeof mapping !== "object" || mapping === null) {
    throw new TypeError(
      `Invalid ${field}: expected { uidMappings, gidMappings }, got ${describe(mapping)}`,
    );
  }
  const { uidMappings, gidMappings } = mapping as Record<string, unknown>;
  checkIDMaps(uidMappings, `${field}.uidMappings`);
  checkIDMaps(gidMappings, `${field}.gidMappings`);
  return mapping as Mapping;
}
