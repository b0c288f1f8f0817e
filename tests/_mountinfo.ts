/**
 * Reading /proc/PID/mountinfo: what tests check mounts against.
 *
 * @module
 */

/** One line of /proc/PID/mountinfo. */
export interface MountInfo {
  /** The mount id. */
  id: number;
  /** The parent's mount id. */
  parent: number;
  /** The root of the mount within its filesystem. */
  root: string;
  /** The mount point. */
  mountPoint: string;
  /** The per-mount options, such as `["ro", "nosuid", "relatime"]`. */
  options: string[];
  /** The optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`. */
  tags: string[];
  /** The filesystem type. */
  fsType: string;
}

/**
 * The mounts of a process, in mount order.
 *
 * @param pid The process, or `"self"`.
 * @returns Its mounts.
 */
export function mountInfo(pid: number | "self" = "self"): MountInfo[] {
  return Deno.readTextFileSync(`/proc/${pid}/mountinfo`).trim().split("\n").map((line) => {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    return {
      id: Number(fields[0]),
      parent: Number(fields[1]),
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      options: fields[5].split(","),
      tags: fields.slice(6, dash),
      fsType: fields[dash + 1],
    };
  });
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * The top mount at `path` in a process, if any.
 *
 * @param path The mount point.
 * @param pid The process, or `"self"`.
 * @returns The mount, or `undefined` if nothing is mounted there.
 */
export function mountAt(path: string, pid: number | "self" = "self"): MountInfo | undefined {
  return mountInfo(pid).findLast((m) => m.mountPoint === path);
}

/**
 * The mounts at `path` and under it, top first.
 *
 * @param path The mount point.
 * @param pid The process, or `"self"`.
 * @returns The mounts.
 */
export function mountsUnder(path: string, pid: number | "self" = "self"): MountInfo[] {
  return mountInfo(pid).filter((m) => m.mountPoint === path || m.mountPoint.startsWith(path + "/"));
}

/**
 * The propagation of a mount, as its tags name it: `"private"`, `"shared"`,
 * `"slave"`, `"shared,slave"` or `"unbindable"`.
 *
 * @param mount The mount.
 * @returns The propagation type.
 */
export function propagation(mount: MountInfo): string {
  const kinds = [];
  if (mount.tags.some((t) => t.startsWith("shared:"))) kinds.push("shared");
  if (mount.tags.some((t) => t.startsWith("master:"))) kinds.push("slave");
  if (mount.tags.includes("unbindable")) kinds.push("unbindable");
  return kinds.length === 0 ? "private" : kinds.join(",");
}

/**
 * The options of a mount that flags set: access, suid, dev, exec, atime,
 * symlinks, and `idmapped`.
 *
 * @param mount The mount.
 * @returns Such as `"ro,nosuid,relatime"`.
 */
export function vfsOptions(mount: MountInfo): string {
  return mount.options.join(",");
}
