/**
 * The mappings most tests use.
 *
 * @module
 */

import type { Mapping } from "../mod.ts";

/** The usual test mapping: ids 0..1999 on disk show as 10000..11999. */
export const BASE = 10000;

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
