/**
 * Errors that say what to do: the kernel's bare EPERM and EINVAL of making a
 * mount source, each given a hint for the situation it most likely means.
 *
 * @module
 */

import { MS_REC } from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { readText } from "../ffi/syscalls.ts";
import type { IDMap, Mount } from "./mount.ts";
import { parseIDMap } from "./userns/idmap.ts";

/** The rootless way to run, named in hints. */
const ROOTLESS_COMMAND = "unshare --user --map-auto --map-root-user --mount";

let initial: boolean | undefined;

/**
 * Whether this process is in the initial user namespace (its uid map is the
 * whole range), read once.
 *
 * @returns `false` in a child user namespace, as rootless.
 */
function inInitialUserNamespace(): boolean {
  if (initial === undefined) {
    try {
      initial = /^\s*0\s+0\s+4294967295\s*$/.test(readText("/proc/self/uid_map"));
    } catch {
      initial = true;
    }
  }
  return initial;
}

/**
 * The hint for an error from making a mount source, if it has one.
 *
 * @param error What was thrown.
 * @param mount The mount.
 * @returns The error, with a hint where the errno and the situation tell what to do.
 */
export function explainSourceError(error: unknown, mount: Mount): unknown {
  if (!(error instanceof MountError)) return error;
  const { op, code } = error;
  if (code === "EPERM" && (op === "open_tree(OPEN_TREE_CLONE)" || op === "move_mount")) {
    return error.withHint(
      `(making a mount needs CAP_SYS_ADMIN over this mount namespace: run as root, or ` +
        `rootless inside ${ROOTLESS_COMMAND})`,
    );
  }
  if (
    code === "EINVAL" && op === "open_tree(OPEN_TREE_CLONE)" && !(mount.flags & MS_REC) &&
    error.hint === undefined // the Worker's, when the source is of another namespace
  ) {
    return error.withHint(
      "(a less privileged mount namespace can't copy this tree without its submounts: " +
        "bind it recursively, with rbind or MS_REC)",
    );
  }
  if (op !== "mount_setattr(MOUNT_ATTR_IDMAP)") return error;
  if (code === "EPERM") {
    return error.withHint(
      inInitialUserNamespace()
        ? "(the user namespace is the initial one, or the mount is id-mapped already)"
        : "(rootless, only a filesystem mounted inside this user namespace can be " +
          "id-mapped, such as a tmpfs mounted after unshare --user --mount)",
    );
  }
  if (code === "EINVAL") {
    const unmapped = unmappedLists(mount.idMapping?.usernsPath);
    return error.withHint(
      unmapped === undefined
        ? "(maybe the filesystem used doesn't support idmap mounts on this kernel?)"
        : `(the user namespace has no ${unmapped}: write its uid_map and gid_map first)`,
    );
  }
  return error;
}

/**
 * Which maps of the user namespace at `/proc/PID/ns/user` are empty, as
 * "uid map", "gid map" or "uid map or gid map"; `undefined` if both are
 * written, or it can't be told.
 */
function unmappedLists(usernsPath: string | undefined): string | undefined {
  const pid = usernsPath?.match(/^\/proc\/(\d+)\/ns\/user$/)?.[1];
  if (pid === undefined) return undefined;
  try {
    const empty = ["uid", "gid"].filter((kind) =>
      readText(`/proc/${pid}/${kind}_map`).trim() === ""
    );
    return empty.length === 0 ? undefined : empty.map((kind) => `${kind} map`).join(" or ");
  } catch {
    return undefined;
  }
}

/**
 * What a refused map may map to: this process's own ranges, from
 * `/proc/self/uid_map` or `gid_map`, which a child namespace's map must lie
 * within, each range within one of them.
 *
 * @param file `"uid_map"` or `"gid_map"`.
 * @returns A hint naming the ranges, or `undefined` in the initial namespace.
 */
export function mappableRanges(file: string): string | undefined {
  let maps: IDMap[];
  try {
    maps = parseIDMap(readText(`/proc/self/${file}`), file);
  } catch {
    return undefined;
  }
  if (maps.length === 1 && maps[0].hostID === 0 && maps[0].size === 4294967295) return undefined;
  const ranges = maps.map((m) => `${m.containerID}..${m.containerID + m.size - 1}`).join(", ");
  const kind = file === "uid_map" ? "uids" : "gids";
  return `(this process maps only the ${kind} ${ranges}: a range must lie within one of these; ` +
    "split one that spans two)";
}
