/**
 * Checks of id range lists (`uidMappings`, `gidMappings`), as the kernel
 * checks a `uid_map` write, made before any syscall.
 *
 * @module
 */

import { describe } from "./errors.ts";
import type { IDMap, Mapping } from "./mount.ts";

/** The most entries a `uid_map` or `gid_map` may hold (Linux 4.15 and later). */
const MAX_ID_MAP_ENTRIES = 340;
/** The kernel takes a map's text in one write of less than a page. */
const MAX_MAP_TEXT = 4095;
/** The longest line a range can take: three 10-digit numbers, 2 spaces, a newline. */
const MAX_LINE = 33;
const ID_LIMIT = 2 ** 32;

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
