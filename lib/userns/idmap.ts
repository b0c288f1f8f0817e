/**
 * Id mappings: keys, the text of `uid_map` files both ways, and the mappings
 * of an existing user namespace.
 *
 * @module
 */

import { MountError } from "../../ffi/mount_error.ts";
import { PermissionError } from "../../ffi/permission_error.ts";
import { readText } from "../../ffi/syscalls.ts";
import { assertPath } from "../check.ts";
import type { IDMap, Mapping } from "../mount.ts";
import { CAT, describeExit, NSENTER, run } from "./programs.ts";

function rangeKeys(maps: IDMap[]): string {
  if (maps.length === 1) {
    const { containerID, hostID, size } = maps[0];
    return `${containerID}:${hostID}:${size}`;
  }
  return maps.map(({ containerID, hostID, size }) => `${containerID}:${hostID}:${size}`)
    .sort().join(",");
}

/** A mapping's key, with the lists and the numbers it was made from. */
interface KeyMemo {
  uidMappings: IDMap[];
  gidMappings: IDMap[];
  /** containerID, hostID and size of each range, uid ranges first. */
  values: number[];
  key: string;
}

// The key of each mapping object seen, while it lives: a runtime passes the
// same mapping again and again, and building the key's string (and hashing
// it) is most of a cached get's cost beyond its dup.
const memos = new WeakMap<Mapping, KeyMemo>();

/** Whether `maps` holds the numbers of `values` from `at` on; its end, or -1. */
function sameRanges(maps: IDMap[], values: number[], at: number): number {
  for (let i = 0; i < maps.length; i++, at += 3) {
    const { containerID, hostID, size } = maps[i];
    if (containerID !== values[at] || hostID !== values[at + 1] || size !== values[at + 2]) {
      return -1;
    }
  }
  return at;
}

/** Whether a mapping still holds what its key was made from. */
function holds(memo: KeyMemo, mapping: Mapping): boolean {
  const { uidMappings, gidMappings } = mapping;
  if (uidMappings !== memo.uidMappings || gidMappings !== memo.gidMappings) return false;
  if ((uidMappings.length + gidMappings.length) * 3 !== memo.values.length) return false;
  const at = sameRanges(uidMappings, memo.values, 0);
  return at >= 0 && sameRanges(gidMappings, memo.values, at) >= 0;
}

/**
 * An id for a mapping that ignores the order of entries, as the kernel does:
 * equal ids mean equal user namespaces. It is remembered for each mapping
 * object, and used again only while the object holds the same lists with the
 * same numbers: a range changed in place gets a new key.
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
  return knownKey(mapping) ?? newKey(mapping);
}

/**
 * The key {@linkcode mappingKey} gave `mapping` before, while the object
 * still holds the same lists with the same numbers: then it is as checked as
 * it was then (only checked mappings get a key), and a caller can skip its
 * checks.
 *
 * @param mapping Anything.
 * @returns The key, or `undefined` for an object not seen, changed since, or
 * not an object.
 *
 * @example Known until changed
 * ```ts
 * import { knownKey, mappingKey } from "./idmap.ts";
 * const range = { containerID: 0, hostID: 1000, size: 1 };
 * const mapping = { uidMappings: [range], gidMappings: [range] };
 * knownKey(mapping); // undefined
 * mappingKey(mapping); // "uid=0:1000:1;gid=0:1000:1"
 * knownKey(mapping); // "uid=0:1000:1;gid=0:1000:1"
 * range.size = 2;
 * knownKey(mapping); // undefined
 * ```
 */
export function knownKey(mapping: unknown): string | undefined {
  const memo = memos.get(mapping as Mapping);
  return memo !== undefined && holds(memo, mapping as Mapping) ? memo.key : undefined;
}

function newKey(mapping: Mapping): string {
  const { uidMappings, gidMappings } = mapping;
  const key = `uid=${rangeKeys(uidMappings)};gid=${rangeKeys(gidMappings)}`;
  const values: number[] = [];
  for (const { containerID, hostID, size } of uidMappings) values.push(containerID, hostID, size);
  for (const { containerID, hostID, size } of gidMappings) values.push(containerID, hostID, size);
  memos.set(mapping, { uidMappings, gidMappings, values, key });
  return key;
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
 * import { isSameMapping } from "@mountfd/mountfd";
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

const ID_LIMIT = 2 ** 32;
const MAP_LINE = /^\s*(\d+)\s+(\d+)\s+(\d+)\s*$/;

/**
 * The outside id that a namespace maps `inside` to.
 *
 * @param maps The namespace's map (`containerID` inside, `hostID` outside).
 * @param inside The id inside.
 * @returns The id outside, or `undefined` when it maps no such id.
 *
 * @example Where 0 of a container's namespace is, outside
 * ```ts
 * import { outsideOf } from "./idmap.ts";
 * outsideOf([{ containerID: 0, hostID: 100000, size: 65536 }], 0); // 100000
 * ```
 */
export function outsideOf(maps: IDMap[], inside: number): number | undefined {
  for (const { containerID, hostID, size } of maps) {
    if (inside >= containerID && inside - containerID < size) return hostID + inside - containerID;
  }
  return undefined;
}

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
 * import { getUserNamespaceMappings } from "@mountfd/mountfd";
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
  const { status, stdout, stderr } = await run(
    NSENTER,
    [`--user=${nsPath}`, "--preserve-credentials", "--", CAT.path, file],
  );
  if (status.code !== 0) {
    throw new MountError("nsenter", {
      source: nsPath,
      detail: `cannot read ${file} in the user namespace (${describeExit(status)})${
        stderr ? `: ${stderr}` : ""
      }`,
    });
  }
  return new TextDecoder().decode(stdout);
}
