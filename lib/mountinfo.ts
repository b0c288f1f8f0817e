/**
 * Whether a mount is one of the calling thread's mount namespace, from its
 * mountinfo: on the main thread, `/proc/thread-self`; in a Worker joined to
 * another namespace, through the `/proc` it saved before it joined.
 *
 * @module
 */

import { fileInfo } from "../ffi/mount_api.ts";
import { chdir, fchdir, readText } from "../ffi/syscalls.ts";
import type { ThreadContext } from "./unmount.ts";

/**
 * Whether the mount an fd is on belongs to this thread's mount namespace.
 *
 * @param fd Any fd (`O_PATH` will do).
 * @param thread Where this thread's `/proc` is.
 * @returns `true` or `false`; `undefined` where it can't be told (no mount
 * id before Linux 5.8, or no mountinfo to read).
 *
 * @example Is a target in the caller's namespace?
 * ```ts
 * import { inThisNamespace } from "./mountinfo.ts";
 * import { open } from "../ffi/syscalls.ts";
 * import { O_PATH } from "../ffi/constants.ts";
 * inThisNamespace(open("/", O_PATH), {}); // true
 * ```
 */
export function inThisNamespace(fd: number, thread: ThreadContext): boolean | undefined {
  try {
    const id = fileInfo(fd).mountId;
    if (id < 0) return undefined;
    return mountinfo(thread).split("\n").some((line) => line.startsWith(`${id} `));
  } catch {
    return undefined;
  }
}

function mountinfo(thread: ThreadContext): string {
  if (thread.procFd === undefined) return readText("/proc/thread-self/mountinfo");
  // A relative path from the saved /proc: this thread's cwd is its own.
  fchdir(thread.procFd, "/proc");
  try {
    return readText("thread-self/mountinfo");
  } finally {
    chdir("/");
  }
}
