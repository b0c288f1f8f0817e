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
import { MountError } from "../ffi/mount_error.ts";
import {
  assertPath,
  chdir,
  fchdir,
  mount,
  moveMount,
  type PathNames,
  readlinkAt,
} from "../ffi/syscalls.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { describe } from "./errors.ts";
import type { Mount } from "./mount.ts";
import { MountSource, type MountSourceType, sourceNamespace } from "./mount_fd.ts";

/**
 * Attaches a mount source at `target`, in the caller's mount namespace.
 *
 * - An `"open_tree"` source is moved there with
 *   `move_mount(MOVE_MOUNT_F_EMPTY_PATH)`. It is one mount: attaching it again
 *   moves it. A detached mount attaches in any mount namespace, whichever one
 *   it was opened in.
 * - A `"plain-open"` source is bind-mounted there from `/proc/self/fd/N`,
 *   with `MS_REC` when the mount has it. The kernel binds only a path of the
 *   caller's own mount namespace: a plain source opened through
 *   {@linkcode MountNamespace} attaches only with its `attach()`.
 *
 * Like mount(2), a symbolic link at `target` is followed. The source stays
 * open; close it when done.
 *
 * @param source A mount source from {@linkcode mountFd}.
 * @param target The mount point, an existing directory or file.
 * @throws {TypeError} For a closed source or a bad target.
 * @throws {MountError} With op `"move_mount"` or `"mount"` if the kernel
 * refuses; EINVAL for a plain source of another mount namespace, with a hint
 * saying so.
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
  assertSource(source, target);
  try {
    attachFd(source.type, source.fd, source.mount, target);
  } catch (error) {
    throw PermissionError.in(
      explainCrossNamespace(error, source, mainNamespace()),
      "attachMountSource",
    );
  }
}

/**
 * Checks the arguments of an attach, before any syscall.
 *
 * @param source What should be a mount source.
 * @param target What should be a path.
 * @throws {TypeError} For something else, or a closed source.
 */
export function assertSource(source: MountSource, target: string): void {
  if (!(source instanceof MountSource)) {
    throw new TypeError(
      `Invalid source: expected a MountSource from mountFd, got ${describe(source)}`,
    );
  }
  assertPath(target, "target");
  if (source.closed) throw new TypeError("Cannot attach a closed mount source");
}

/**
 * Attaches a mount source fd at `target`, in the calling thread's mount
 * namespace: move_mount(2) for a detached mount, a bind mount of the fd
 * otherwise. Synchronous, so that a Worker can run it on its own thread.
 *
 * @param type The kind of fd.
 * @param fd The fd.
 * @param from The mount it was made from.
 * @param target The mount point.
 * @throws {MountError} With op `"move_mount"` or `"mount"`.
 */
export function attachFd(type: MountSourceType, fd: number, from: Mount, target: string): void {
  const names = { source: from.source, target };
  if (type === "open_tree") {
    moveMount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS, names);
  } else {
    bindFd(fd, target, MS_BIND | (from.flags & MS_REC), names);
  }
}

/** This thread's fd of the host's /proc, in a Worker joined to another mount namespace. */
let procDirFd: number | undefined;

/**
 * Makes plain binds on this thread name their fd through a saved `/proc`
 * directory, `self/fd/N` relative to it, rather than through `/proc/self/fd`
 * of the current mount namespace, which may hold another procfs or none.
 * Only a Worker that has joined another mount namespace calls this; the cwd
 * of its thread is the namespace's root, and goes back there after each bind.
 *
 * @param fd An fd of the host's `/proc`, opened before the setns(2).
 */
export function useProcDir(fd: number): void {
  procDirFd = fd;
}

function bindFd(fd: number, target: string, flags: number, names: PathNames): void {
  if (procDirFd === undefined) {
    mount(`/proc/self/fd/${fd}`, target, null, flags, null, names);
    return;
  }
  // The cwd is the root here, so a relative target is relative to "/".
  const absolute = target.startsWith("/") ? target : `/${target}`;
  fchdir(procDirFd, "/proc");
  try {
    mount(`self/fd/${fd}`, absolute, null, flags, null, names);
  } finally {
    chdir("/");
  }
}

let mainNs: string | undefined;

/**
 * The mount namespace of the main thread, which never changes.
 *
 * @returns Such as `"mnt:[4026531841]"`, or `undefined` if unknown.
 */
export function mainNamespace(): string | undefined {
  if (mainNs !== undefined) return mainNs;
  try {
    mainNs = readlinkAt(AT_FDCWD, "/proc/thread-self/ns/mnt");
  } catch {
    return undefined;
  }
  return mainNs;
}

/**
 * Adds the reason to an EINVAL from binding a plain source of another mount
 * namespace (the kernel binds only paths of the caller's own).
 *
 * @param error What the attach threw.
 * @param source The source.
 * @param here The mount namespace of the attach, or `undefined` if unknown.
 * @returns The error to throw.
 */
export function explainCrossNamespace(
  error: unknown,
  source: MountSource,
  here: string | undefined,
): unknown {
  if (
    !(error instanceof MountError) || error.code !== "EINVAL" || source.type !== "plain-open"
  ) {
    return error;
  }
  const from = sourceNamespace(source) ?? mainNamespace();
  if (from === undefined || here === undefined || from === here) return error;
  return new MountError(error.op, {
    errno: error.errno,
    source: error.source,
    target: error.target,
    hint: `(a plain-open source binds only in the mount namespace it was opened in: ` +
      `it is from ${from}, the attach ran in ${here}; use an id-mapped (open_tree) ` +
      `source, or attach it there)`,
    cause: error,
  });
}
