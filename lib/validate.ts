/**
 * Mount validation: runc's `checkIDMapMounts` and `checkBindOptions` rules,
 * and the checks the kernel would make on id mappings later.
 *
 * @module
 */

import { MOUNT_ATTR_IDMAP } from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { assertPath } from "./check.ts";
import { describe } from "./errors.ts";
import { checkIDMaps } from "./id_ranges.ts";
import { isBind, type Mount } from "./mount.ts";
import { resolveIDMapping, type SpecContext } from "./spec.ts";

function invalid(mount: Mount, rule: string, cause?: unknown): MountError {
  return new MountError("validate", { target: mount.destination, detail: rule, cause });
}

/**
 * Checks a mount as runc validates its config, before anything is mounted.
 *
 * - The destination is absolute.
 * - A bind mount has no filesystem-specific `data`.
 * - `recAttr` holds no `MOUNT_ATTR_IDMAP` (id maps go in `idMapping`).
 * - An id-mapped mount is a bind mount, and has either both uid and gid
 *   mappings or a user namespace path, not both. Without either, it takes the
 *   container's from `context`, as {@linkcode mountFromSpec} does.
 * - Each mapping is what the kernel accepts: 1 to 340 ranges of size 1 or
 *   more, ids and id + size below 2^32, no two ranges overlapping on the
 *   container side or on the host side.
 *
 * @param mount The mount.
 * @param context The container's user namespace.
 * @throws {MountError} With op `"validate"`, the destination in `target`, and
 * the rule broken, such as
 * `validate dst=/data: id-mapped mounts are only supported for bind-mounts`.
 * @throws {TypeError} If `mount` is not an object or its paths are not strings.
 *
 * @example Reject an id-mapped tmpfs
 * ```ts
 * import { MountError, validateMount } from "@mountfd/mountfd";
 *
 * try {
 *   validateMount({
 *     source: "tmpfs",
 *     destination: "/tmp",
 *     device: "tmpfs",
 *     flags: 0,
 *     idMapping: { usernsPath: "/proc/1/ns/user" },
 *   });
 * } catch (error) {
 *   console.log((error as MountError).message);
 * }
 * ```
 */
export function validateMount(mount: Mount, context: SpecContext = {}): void {
  if (typeof mount !== "object" || mount === null) {
    throw new TypeError(`Invalid mount: expected an object, got ${describe(mount)}`);
  }
  assertPath(mount.destination, "mount.destination");
  assertPath(mount.source, "mount.source");
  if (!mount.destination.startsWith("/")) {
    throw invalid(mount, `mount destination ${mount.destination} is not absolute`);
  }
  if (isBind(mount) && mount.data) {
    const unknown = mount.data.split(",").map((option) => JSON.stringify(option)).join(", ");
    throw invalid(
      mount,
      `bind mounts cannot have any filesystem-specific options applied: ${unknown} ` +
        "(not a known mount option)",
    );
  }
  const recAttr = mount.recAttr;
  if (recAttr && ((recAttr.attrSet | recAttr.attrClr) & MOUNT_ATTR_IDMAP) !== 0) {
    throw invalid(mount, "mount configuration cannot contain recAttr for MOUNT_ATTR_IDMAP");
  }
  const idMapping = mount.idMapping;
  if (idMapping == null) return;
  if (!isBind(mount)) {
    throw invalid(mount, "id-mapped mounts are only supported for bind-mounts");
  }
  const { usernsPath, uidMappings, gidMappings } = resolveIDMapping(idMapping, context);
  if (usernsPath !== undefined) {
    if (uidMappings !== undefined || gidMappings !== undefined) {
      throw invalid(
        mount,
        "id-mapped mounts cannot have both userns_path and uid and gid mappings specified",
      );
    }
    assertPath(usernsPath, "mount.idMapping.usernsPath");
    return;
  }
  if (!uidMappings?.length || !gidMappings?.length) {
    throw invalid(mount, "id-mapped mounts must have both uid and gid mappings specified");
  }
  for (
    const [maps, field] of [[uidMappings, "uidMappings"], [gidMappings, "gidMappings"]] as const
  ) {
    try {
      checkIDMaps(maps, `idMapping.${field}`);
    } catch (error) {
      throw invalid(mount, (error as Error).message.replace(/^Invalid /, "invalid "), error);
    }
  }
}
