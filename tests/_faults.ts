/**
 * Fault injection for tests: a faulting libc symbol table, installed through
 * the one seam below the syscall wrappers (`replaceSymbols` in ffi/libc.ts).
 * Spawns are no libc calls: tests fail them for real, or through a stand-in
 * `Deno.Command` (tests/_process.ts). A failed call sets
 * errno through a view over the real `__errno_location()` and returns -1, as
 * libc does, so the wrappers take their real error paths.
 *
 * @module
 */

import {
  AT_RECURSIVE,
  CLONE_FS,
  CLONE_NEWNS,
  F_DUPFD_CLOEXEC,
  MOUNT_ATTR_IDMAP,
  MS_REC,
  OPEN_TREE_CLONE,
} from "../ffi/constants.ts";
import { type Core, fallbackSymbols, replaceSymbols, SYMBOLS } from "../ffi/libc.ts";
import { stringifyMountFlags } from "../mod.ts";

/** A libc call about to be made: the symbol, and its arguments as passed. */
export interface LibcCall {
  /** The symbol, such as `"openat"` or `"syscall_open_tree"`. */
  symbol: string;
  /** The arguments, as passed to the symbol. */
  args: readonly unknown[];
}

/**
 * Decides, before a libc call, whether it fails.
 *
 * @param op The call, named as its `MountError` names it ({@linkcode opName}).
 * @param call The symbol and its arguments.
 * @returns An errno to fail with instead of making the call, or `undefined`
 * to make it. A hook runs between a wrapper's C strings and its call, so it
 * must not call the wrappers itself (they share one path buffer).
 */
export type FaultHook = (op: string, call: LibcCall) => number | undefined;

/** Calls that cannot fail in a way the wrappers report: never faulted, never counted. */
const UNCHECKED = new Set(["close", "__errno_location"]);

/**
 * The op a wrapper's `MountError` names for a raw call: `"open"` for open and
 * openat, `"mount_setattr(MS_SHARED)"` for a propagation change, and so on. The
 * `syscall(2)` entries are named after the call they make.
 *
 * @param call The call.
 * @returns Its op.
 */
export function opName({ symbol, args }: LibcCall): string {
  const raw = symbol.startsWith("syscall_");
  const name = raw ? symbol.slice("syscall_".length) : symbol;
  const a = raw ? args.slice(1) : args;
  switch (name) {
    case "open":
    case "openat":
      return "open";
    case "fcntl":
      return a[1] === F_DUPFD_CLOEXEC ? "fcntl(F_DUPFD_CLOEXEC)" : "fcntl";
    case "ioctl":
      return "ioctl(NS_GET_NSTYPE)";
    case "unshare":
      return a[0] === CLONE_FS ? "unshare(CLONE_FS)" : "unshare";
    case "setns":
      return a[1] === CLONE_NEWNS ? "setns(CLONE_NEWNS)" : "setns";
    case "open_tree":
      return Number(a[2]) & OPEN_TREE_CLONE ? "open_tree(OPEN_TREE_CLONE)" : "open_tree";
    case "mount_setattr": {
      const attr = new DataView((a[3] as Uint8Array).buffer, (a[3] as Uint8Array).byteOffset);
      const recursive = Number(a[2]) & AT_RECURSIVE;
      if (attr.getUint32(0, true) & MOUNT_ATTR_IDMAP) return "mount_setattr(MOUNT_ATTR_IDMAP)";
      // struct mount_attr: attr_set, attr_clr, propagation, userns_fd (u64s).
      const propagation = attr.getUint32(16, true);
      if (propagation !== 0) {
        return `mount_setattr(${stringifyMountFlags(propagation | (recursive ? MS_REC : 0))})`;
      }
      return recursive ? "mount_setattr(AT_RECURSIVE)" : "mount_setattr";
    }
    default:
      return name;
  }
}

/**
 * A copy of `loaded` whose calls ask `hook` first, and fail as libc does
 * when it returns an errno.
 *
 * @param loaded The real symbols.
 * @param hook The hook.
 * @returns The faulting symbols.
 */
export function faultingSymbols(loaded: Core, hook: FaultHook): Core {
  const location = loaded.__errno_location();
  if (location === null) throw new Error("Cannot locate errno: got NULL");
  const errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(location, 4));
  const table: Record<string, unknown> = { ...loaded };
  for (const [symbol, value] of Object.entries(loaded)) {
    if (typeof value !== "function" || UNCHECKED.has(symbol)) continue;
    const real = value as (...args: unknown[]) => unknown;
    const { result } = SYMBOLS[symbol as keyof typeof SYMBOLS];
    const failed = result === "i64" || result === "isize" ? -1n : -1;
    table[symbol] = (...args: unknown[]) => {
      const call = { symbol, args };
      const code = hook(opName(call), call);
      if (code === undefined) return real(...args);
      errnoView[0] = code;
      return failed;
    };
  }
  return table as Core;
}

// replaceSymbols hands its replacements the syscall(2) stand-ins too: bound
// here, at load, so that no test opens a library (the resource sanitizer).
// A probe run without --allow-ffi binds nothing.
if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") fallbackSymbols();

let installed: Disposable | undefined;

/**
 * Sets or clears the fault hook: every checked libc call asks it first.
 *
 * @param hook The hook, or `undefined` to put the real symbols back.
 */
export function setFaultHook(hook: FaultHook | undefined): void {
  installed?.[Symbol.dispose]();
  installed = undefined;
  if (hook === undefined) return;
  installed = replaceSymbols((loaded) => faultingSymbols(loaded, hook));
}
