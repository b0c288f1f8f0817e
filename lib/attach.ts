/**
 * Attaching mount sources.
 *
 * @module
 */

import {
  AT_FDCWD,
  MOVE_MOUNT_F_EMPTY_PATH,
  MOVE_MOUNT_T_SYMLINKS,
  MS_BIND,
  MS_REC,
} from "../ffi/constants.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { assertPath, mount, moveMount } from "../ffi/syscalls.ts";
import { describe } from "./errors.ts";
import { MountSource } from "./mount_fd.ts";

/**
 * Attaches a mount source at `target`, in the caller's mount namespace.
 *
 * - An `"open_tree"` source is moved there with
 *   `move_mount(MOVE_MOUNT_F_EMPTY_PATH)`. It is one mount: attaching it again
 *   moves it.
 * - A `"plain-open"` source is bind-mounted there from `/proc/self/fd/N`,
 *   with `MS_REC` when the mount has it.
 *
 * Like mount(2), a symbolic link at `target` is followed. The source stays
 * open; close it when done.
 *
 * @param source A mount source from {@linkcode mountFd}.
 * @param target The mount point, an existing directory or file.
 * @throws {TypeError} For a closed source or a bad target.
 * @throws {MountError} With op `"move_mount"` or `"mount"` if the kernel
 * refuses.
 *
 * @example Bind a directory somewhere else
 * ```ts
 * import { attachMountSource, mountFd, MS_BIND } from "../mod.ts";
 *
 * using source = await mountFd({ source: "/srv/data", destination: "/data", flags: MS_BIND });
 * attachMountSource(source, "/mnt/data");
 * ```
 */
export function attachMountSource(source: MountSource, target: string): void {
  if (!(source instanceof MountSource)) {
    throw new TypeError(
      `Invalid source: expected a MountSource from mountFd, got ${describe(source)}`,
    );
  }
  assertPath(target, "target");
  if (source.closed) throw new TypeError("Cannot attach a closed mount source");
  const names = { source: source.mount.source, target };
  try {
    if (source.type === "open_tree") {
      moveMount(
        source.fd,
        "",
        AT_FDCWD,
        target,
        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS,
        names,
      );
    } else {
      const flags = MS_BIND | (source.mount.flags & MS_REC);
      mount(`/proc/self/fd/${source.fd}`, target, null, flags, null, names);
    }
  } catch (error) {
    throw PermissionError.in(error, "attachMountSource");
  }
}
