/**
 * Id mappings: checks the kernel would make later, made early and named.
 *
 * @module
 */

import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { assertPath, readText } from "../ffi/syscalls.ts";
import { describe } from "./errors.ts";
import type { IDMap } from "./mount.ts";
import { CAT, NSENTER } from "./spawn.ts";

/**
 * The uid and gid mappings of a user namespace.
 *
 * @example The usual rootless range
 * ```ts
 * import type { Mapping } from "../mod.ts";
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

/** The most entries a `uid_map` or `gid_map` may hold (Linux 4.15 and later). */
export const MAX_ID_MAP_ENTRIES = 340;

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

/** Checks entry `i` of a list; its name is built only for an error. */
function checkEntry(entry: unknown, field: string, i: number): void {
  if (typeof entry !== "object" || entry === null) {
    throw new TypeError(
      `Invalid ${field}[${i}]: expected { containerID, hostID, size }, got ${describe(entry)}`,
    );
  }
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
 * below 2^32, and no two ranges overlapping on either side.
 *
 * @param maps The list.
 * @param field Its name, for the error message, such as
 * `"idMapping.uidMappings"`.
 * @returns `maps`, typed.
 * @throws {TypeError} Naming the bad field, such as
 * `Invalid idMapping.uidMappings[0].size: expected an integer from 1 to
 * 4294967295, got 0`.
 *
 * @example Check a mapping
 * ```ts
 * import { checkIDMaps } from "./idmap.ts";
 * checkIDMaps([{ containerID: 0, hostID: 1000, size: 1 }], "uidMappings");
 * ```
 */
export function checkIDMaps(maps: unknown, field: string): IDMap[] {
  if (!Array.isArray(maps)) {
    throw new TypeError(
      `Invalid ${field}: expected an array of { containerID, hostID, size }, got ${describe(maps)}`,
    );
  }
  if (maps.length === 0) {
    throw new TypeError(`Invalid ${field}: needs at least one entry`);
  }
  if (maps.length > MAX_ID_MAP_ENTRIES) {
    throw new TypeError(
      `Invalid ${field}: the kernel takes at most ${MAX_ID_MAP_ENTRIES} entries, got ${maps.length}`,
    );
  }
  for (let i = 0; i < maps.length; i++) checkEntry(maps[i], field, i);
  checkOverlap(maps, field, "containerID");
  checkOverlap(maps, field, "hostID");
  return maps;
}

/**
 * Checks both lists of a mapping with {@linkcode checkIDMaps}.
 *
 * @param mapping The mapping.
 * @param field Its name, for the error message.
 * @returns `mapping`, typed.
 * @throws {TypeError} Naming the bad field.
 *
 * @example Check a mapping
 * ```ts
 * import { checkMapping } from "./idmap.ts";
 * const one = [{ containerID: 0, hostID: 1000, size: 1 }];
 * checkMapping({ uidMappings: one, gidMappings: one }, "mapping");
 * ```
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

function rangeKeys(maps: IDMap[]): string {
  if (maps.length === 1) {
    const { containerID, hostID, size } = maps[0];
    return `${containerID}:${hostID}:${size}`;
  }
  return maps.map(({ containerID, hostID, size }) => `${containerID}:${hostID}:${size}`)
    .sort().join(",");
}

/**
 * An id for a mapping that ignores the order of entries, as the kernel does:
 * equal ids mean equal user namespaces.
 *
 * @param mapping A checked mapping.
 * @returns Such as `"uid=0:100000:65536;gid=0:100000:65536"`.
 *
 * @example Order does not matter
 * ```ts
 * import { mappingKey } from "./idmap.ts";
 * const a = { containerID: 0, hostID: 1000, size: 1 };
 * const b = { containerID: 1, hostID: 2000, size: 1 };
 * mappingKey({ uidMappings: [a, b], gidMappings: [a] }) ===
 *   mappingKey({ uidMappings: [b, a], gidMappings: [a] }); // true
 * ```
 */
export function mappingKey(mapping: Mapping): string {
  return `uid=${rangeKeys(mapping.uidMappings)};gid=${rangeKeys(mapping.gidMappings)}`;
}

/**
 * Formats id ranges as `/proc/PID/uid_map` takes them: one
 * `containerID hostID size` line each.
 *
 * @param maps The ranges.
 * @returns The text, for a single write.
 *
 * @example Format a range
 * ```ts
 * import { formatIDMaps } from "./idmap.ts";
 * formatIDMaps([{ containerID: 0, hostID: 100000, size: 65536 }]); // "0 100000 65536\n"
 * ```
 */
export function formatIDMaps(maps: IDMap[]): string {
  let text = "";
  for (const { containerID, hostID, size } of maps) {
    text += `${containerID} ${hostID} ${size}\n`;
  }
  return text;
}

/**
 * Whether two lists of id ranges are equal, entry by entry and in order, as
 * runc's `IsSameMapping` compares them.
 *
 * @param a One list.
 * @param b The other.
 * @returns `true` if they have the same ranges in the same order.
 *
 * @example Order matters
 * ```ts
 * import { isSameMapping } from "../mod.ts";
 * const a = { containerID: 0, hostID: 1000, size: 1 };
 * const b = { containerID: 1, hostID: 2000, size: 1 };
 * isSameMapping([a, b], [a, b]); // true
 * isSameMapping([a, b], [b, a]); // false
 * ```
 */
export function isSameMapping(a: IDMap[], b: IDMap[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((m, i) =>
    m.containerID === b[i].containerID && m.hostID === b[i].hostID && m.size === b[i].size
  );
}

const MAP_LINE = /^\s*(\d+)\s+(\d+)\s+(\d+)\s*$/;

/**
 * Parses the text of a `/proc/PID/uid_map` or `gid_map`, strictly.
 *
 * @param text The file's text: one `containerID hostID size` line per range.
 * @param what What is parsed, for the error message, such as
 * `"uid_map of /proc/42/ns/user"`.
 * @returns The ranges; none for an empty (unwritten) map.
 * @throws {TypeError} For the first bad line, with its number and text.
 *
 * @example Parse a map
 * ```ts
 * import { parseIDMap } from "./idmap.ts";
 * parseIDMap("         0     100000      65536\n", "uid_map");
 * // [{ containerID: 0, hostID: 100000, size: 65536 }]
 * ```
 */
export function parseIDMap(text: string, what: string): IDMap[] {
  const maps: IDMap[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    const match = MAP_LINE.exec(line);
    const [containerID, hostID, size] = match ? match.slice(1).map(Number) : [];
    if (!match || containerID >= ID_LIMIT || hostID >= ID_LIMIT || size >= ID_LIMIT || size < 1) {
      throw new TypeError(
        `Cannot parse ${what}: line ${i + 1}: expected "containerID hostID size", got ${
          JSON.stringify(line)
        }`,
      );
    }
    maps.push({ containerID, hostID, size });
  });
  return maps;
}

const PROC_USERNS = /^\/proc\/([1-9]\d*)\/ns\/user$/;

/**
 * The uid and gid mappings of an existing user namespace, as runc's
 * `GetUserNamespaceMappings` reads them.
 *
 * For `/proc/PID/ns/user`, it reads `/proc/PID/uid_map` and `gid_map`. For
 * any other path, such as a bind-mounted nsfs file whose process is gone, or
 * if the fast path fails, it joins the namespace from a helper
 * (`nsenter --user=PATH --preserve-credentials cat /proc/self/uid_map`), and
 * reaps it.
 *
 * @param nsPath The user namespace file.
 * @returns Its mappings.
 * @throws {TypeError} For a path with a NUL byte, or a map that does not parse.
 * @throws {MountError} If the helper fails (with its stderr), such as op
 * `"nsenter"` with the kernel's refusal to join.
 *
 * @example Read the mappings of a container's user namespace
 * ```ts
 * import { getUserNamespaceMappings } from "../mod.ts";
 * const { uidMappings, gidMappings } = await getUserNamespaceMappings("/proc/1234/ns/user");
 * ```
 */
export async function getUserNamespaceMappings(nsPath: string): Promise<Mapping> {
  assertPath(nsPath, "nsPath");
  const pid = PROC_USERNS.exec(nsPath)?.[1];
  const read = async (name: "uid_map" | "gid_map"): Promise<IDMap[]> => {
    let text: string | undefined;
    if (pid !== undefined) {
      try {
        text = readText(`/proc/${pid}/${name}`);
      } catch {
        // The process is gone, or hidden: join the namespace instead.
      }
    }
    text ??= await readInNamespace(nsPath, `/proc/self/${name}`);
    return parseIDMap(text, `${name} of ${nsPath}`);
  };
  // Settle both before answering, so that no helper outlives the call.
  const [uid, gid] = await Promise.allSettled([read("uid_map"), read("gid_map")]);
  if (uid.status === "rejected") throw PermissionError.in(uid.reason, "getUserNamespaceMappings");
  if (gid.status === "rejected") throw PermissionError.in(gid.reason, "getUserNamespaceMappings");
  return { uidMappings: uid.value, gidMappings: gid.value };
}

/** Reads `file` from inside the user namespace at `nsPath`, with nsenter. */
async function readInNamespace(nsPath: string, file: string): Promise<string> {
  const child = NSENTER.spawn(
    [`--user=${nsPath}`, "--preserve-credentials", "--", CAT.path, file],
    {
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  );
  const { code, signal, stdout, stderr } = await child.output();
  if (code !== 0) {
    const errors = new TextDecoder().decode(stderr).trim();
    throw new MountError("nsenter", {
      source: nsPath,
      detail: `cannot read ${file} in the user namespace (${signal ?? `exit code ${code}`})${
        errors ? `: ${errors}` : ""
      }`,
    });
  }
  return new TextDecoder().decode(stdout);
}
