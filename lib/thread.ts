/**
 * What a call made on the calling thread needs of it: where its `/proc` is.
 * On the main thread, `/proc`; in a Worker joined to another mount
 * namespace, the `/proc` it saved before it joined (the namespace's may
 * show another pid namespace, or nothing).
 *
 * @module
 */

import type { CPath } from "../ffi/call.ts";
import { chdir, fchdir } from "../ffi/syscalls.ts";

/** What a call on the calling thread needs of it. */
export interface ThreadContext {
  /**
   * An fd of a `/proc` that shows this process, in a Worker joined to
   * another mount namespace (where `/proc` may show another pid namespace,
   * or nothing); `undefined` for the thread's own `/proc`.
   */
  readonly procFd?: number;
}

const encoder = new TextEncoder();

/**
 * Runs `fn` with a path of this thread's `/proc`: `/proc/` and `path` on the
 * main thread; in a Worker, `path` itself, relative to its saved `/proc`,
 * which becomes its cwd for the call (a thread's cwd is its own).
 *
 * @param thread Where this thread's `/proc` is.
 * @param path A path below `/proc`, such as `thread-self/mountinfo`: text,
 * or text then bytes.
 * @param fn What to do with the path.
 * @returns What `fn` returns.
 *
 * @example Read this thread's mountinfo
 * ```ts
 * import { inProc } from "./thread.ts";
 * import { readText } from "../ffi/syscalls.ts";
 * const mountinfo = inProc({}, "thread-self/mountinfo", readText);
 * ```
 */
export function inProc<T>(thread: ThreadContext, path: string, fn: (path: string) => T): T;
export function inProc<T>(
  thread: ThreadContext,
  path: string | [string, Uint8Array],
  fn: (path: CPath) => T,
): T;
export function inProc<T>(
  thread: ThreadContext,
  path: string | [string, Uint8Array],
  fn: (path: never) => T,
): T {
  const run = fn as (path: CPath) => T;
  if (thread.procFd === undefined) return run(join("/proc/", path));
  fchdir(thread.procFd, "/proc");
  try {
    return run(join("", path));
  } finally {
    chdir("/");
  }
}

/** A path of text, or of text then bytes (an entry's name that need not be UTF-8). */
function join(head: string, path: string | [string, Uint8Array]): CPath {
  if (typeof path === "string") return head + path;
  const start = encoder.encode(head + path[0]);
  const bytes = new Uint8Array(start.length + path[1].length);
  bytes.set(start);
  bytes.set(path[1], start.length);
  return bytes;
}
