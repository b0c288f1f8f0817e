/**
 * What is left of the old test seam: fault injection for `spawn` in
 * `process.ts` only, until that moves out of `ffi/`. Syscall faults go
 * through a replaced symbol table (`replaceSymbols` in `libc.ts`).
 * Production code never sets the hook; `mod.ts` does not export this module.
 *
 * @module
 */

/**
 * Decides, before a spawn, whether it fails.
 *
 * @param op The operation about to run, as named in its `MountError`, such as
 * `"spawn unshare"`.
 * @returns An errno to fail with instead of spawning, or `undefined` to spawn.
 */
export type FaultHook = (op: string) => number | undefined;

let hook: FaultHook | undefined;
let injected = 0;

/**
 * Sets or clears the spawn fault hook.
 *
 * @param fault The hook, or `undefined` to clear it.
 */
export function setFaultHook(fault: FaultHook | undefined): void {
  hook = fault;
}

/**
 * Asks the fault hook whether `op` fails now; one comparison when no hook is
 * set.
 *
 * @param op The operation about to run.
 * @returns Whether to fail instead of running it.
 */
export function faulted(op: string): boolean {
  if (hook === undefined) return false;
  const code = hook(op);
  if (code === undefined) return false;
  injected = code;
  return true;
}

/**
 * The errno the last {@linkcode faulted} call injected, once; 0 if none.
 *
 * @returns The injected errno, or 0.
 */
export function takeInjectedErrno(): number {
  const code = injected;
  injected = 0;
  return code;
}
