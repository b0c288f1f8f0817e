/**
 * A test seam: fault injection for every syscall and spawn, and a switch to
 * the raw `syscall(2)` path of the new mount API. Production code never sets
 * either; `mod.ts` does not export this module.
 *
 * @module
 */

/**
 * Decides, before a syscall or spawn, whether it fails.
 *
 * @param op The operation about to run, as named in its `MountError`, such as
 * `"open_tree(OPEN_TREE_CLONE)"`, `"mount_setattr"` or `"spawn unshare"`.
 * @returns An errno to fail with instead of making the call, or `undefined`
 * to make it. A hook runs between a wrapper's C strings and its call, so it
 * must not call the wrappers itself (they share one path buffer).
 */
export type FaultHook = (op: string) => number | undefined;

/** The state the wrappers read. Not for production use. */
export const seam: { fault?: FaultHook; rawSyscalls: boolean } = {
  fault: undefined,
  rawSyscalls: false,
};

/**
 * Sets or clears the fault hook.
 *
 * @param hook The hook, or `undefined` to clear it.
 *
 * @example Make the next open_tree fail with EPERM
 * ```ts
 * import { setFaultHook } from "./seam.ts";
 * let armed = true;
 * setFaultHook((op) => {
 *   if (armed && op.startsWith("open_tree")) {
 *     armed = false;
 *     return 1;
 *   }
 *   return undefined;
 * });
 * setFaultHook(undefined);
 * ```
 */
export function setFaultHook(hook: FaultHook | undefined): void {
  seam.fault = hook;
}

/**
 * Forces the new mount API through `syscall(2)` even where glibc wraps it.
 *
 * @param on Whether to force the raw syscalls.
 *
 * @example Test the fallback path
 * ```ts
 * import { forceRawSyscalls } from "./seam.ts";
 * forceRawSyscalls(true);
 * forceRawSyscalls(false);
 * ```
 */
export function forceRawSyscalls(on: boolean): void {
  seam.rawSyscalls = on;
}

let injected = 0;

/**
 * Asks the fault hook whether `op` fails now. Wrappers call it before every
 * syscall and spawn; it costs one comparison when no hook is set.
 *
 * @param op The operation about to run.
 * @returns Whether to fail instead of making the call.
 *
 * @example Guard a call
 * ```ts
 * import { faulted, takeInjectedErrno } from "./seam.ts";
 * if (faulted("open")) console.log(takeInjectedErrno());
 * ```
 */
export function faulted(op: string): boolean {
  if (seam.fault === undefined) return false;
  const code = seam.fault(op);
  if (code === undefined) return false;
  injected = code;
  return true;
}

/**
 * The errno the last {@linkcode faulted} call injected, once; 0 if none.
 *
 * @returns The injected errno, or 0.
 *
 * @example Read an injected errno
 * ```ts
 * import { takeInjectedErrno } from "./seam.ts";
 * takeInjectedErrno(); // 0
 * ```
 */
export function takeInjectedErrno(): number {
  const code = injected;
  injected = 0;
  return code;
}
