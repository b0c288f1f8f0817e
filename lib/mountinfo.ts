/**
 * Whether a mount is one of the calling thread's mount namespace, from its
 * mountinfo: on the main thread, `/proc/thread-self`; in a Worker joined to
 * another namespace, through the `/proc` it saved before it joined.
 *
 * @module
 */

import { fileInfo } from "../ffi/mount_api.ts";
import { readText } from "../ffi/syscalls.ts";
import { inProc, type ThreadContext } from "./thread.ts";

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
    const mountinfo = inProc(thread, "thread-self/mountinfo", readText);
    return mountinfo.split("\n").some((line) => line.startsWith(`${id} `));
  } catch {
    return undefined;
  }
}
