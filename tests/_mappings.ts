/**
 * The mappings most tests use.
 *
 * @module
 */

import type { Mapping } from "../mod.ts";

/** The usual test mapping: ids 0..1999 on disk show as 10000..11999. */
export const BASE = 10000;

/**
 * The message of a map the kernel refuses rootless: the file, the text, and
 * the ranges this process maps.
 *
 * @param text The map's text, as written.
 * @returns A pattern for the whole message.
 */
export function refusedMap(text: string): RegExp {
  return new RegExp(
    String.raw`^write dst=/proc/\d+/uid_map: EPERM: .* \(writing "${text}"\) ` +
      String.raw`\(this process maps only the uids [\d., ]+: a range must lie within ` +
      String.raw`one of these; split one that spans two\)$`,
  );
}

/**
 * A mapping of one range, for both uids and gids.
 *
 * @param containerID The first id on disk.
 * @param hostID The first id seen through the mount.
 * @param size The number of ids.
 * @returns The mapping.
 */
export function simpleMapping(
  containerID = 0,
  hostID = BASE,
  size = 2000,
): Mapping {
  const range = { containerID, hostID, size };
  return { uidMappings: [range], gidMappings: [{ ...range }] };
}
