/**
 * Fault injection for tests: a faulting libc symbol table, installed through
 * the one seam below the syscall wrappers (`replaceSymbols` in ffi/libc.ts).
 * The userns helpers are spawned through libc too (`posix_spawnp`): the same
 * table shows each spawn to the {@linkcode SpawnHooks} of tests/_process.ts. A failed call sets
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

/**
 * Calls that cannot fail in a way the wrappers report: never faulted, never
 * counted. A helper's reaping reports nothing by design: one that can't be
 * reaped is given up on.
 */
const UNCHECKED = new Set(["close", "__errno_location", "waitid"]);

/**
 * Calls that return an error number instead of setting errno: never faulted
 * (a test fails a spawn through its `before` hook), never counted.
 */
const RETURNS_ERROR = new Set([
  "posix_spawnp",
  "posix_spawn_file_actions_init",
  "posix_spawn_file_actions_adddup2",
  "posix_spawn_file_actions_destroy",
]);

/** What a test sees of each spawn through libc. */
export interface SpawnHooks {
  /** Before the spawn, with the program and its arguments (not argv[0]): throw to fail it. */
  before?(command: string, args: readonly string[]): void;
  /** After the spawn, with the child's pid. */
  after?(pid: number, command: string): void;
}

/**
 * A C string a call was given, as text: its bytes up to the NUL.
 *
 * @param bytes The call's argument.
 * @returns The text.
 */
export function cText(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
}

/** The C strings of a NULL-terminated argv. */
function readArgv(argv: Uint8Array): string[] {
  const strings: string[] = [];
  const pointers = new BigUint64Array(argv.buffer, argv.byteOffset, argv.byteLength >> 3);
  for (const value of pointers) {
    if (value === 0n) break;
    strings.push(Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(value)!));
  }
  return strings;
}

/** posix_spawnp, calling `hooks` around it. */
function hookedSpawn(
  real: (...args: unknown[]) => unknown,
  hooks: SpawnHooks,
): (...args: unknown[]) => unknown {
  return (...args: unknown[]): unknown => {
    const command = cText(args[1] as Uint8Array);
    hooks.before?.(command, readArgv(args[4] as Uint8Array).slice(1));
    const result = real(...args);
    if (result === 0) hooks.after?.(new Int32Array((args[0] as Uint8Array).buffer)[0], command);
    return result;
  };
}

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
    case "pidfd":
      return args[0] === 434n ? "pidfd_open" : args[0] === 424n ? "pidfd_send_signal" : "kill";
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
export function faultingSymbols(loaded: Core, hook: FaultHook, spawns?: SpawnHooks): Core {
  const location = loaded.__errno_location();
  if (location === null) throw new Error("Cannot locate errno: got NULL");
  const errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(location, 4));
  const table: Record<string, unknown> = { ...loaded };
  for (const [symbol, value] of Object.entries(loaded)) {
    if (typeof value !== "function" || UNCHECKED.has(symbol)) continue;
    const real = value as (...args: unknown[]) => unknown;
    if (RETURNS_ERROR.has(symbol)) {
      if (symbol === "posix_spawnp" && spawns !== undefined) {
        table[symbol] = hookedSpawn(real, spawns);
      }
      continue;
    }
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
let faultHook: FaultHook | undefined;
let spawnHooks: SpawnHooks | undefined;

/** Puts in the table that asks the hooks set now, or the real symbols if none is. */
function install(): void {
  installed?.[Symbol.dispose]();
  installed = undefined;
  if (faultHook === undefined && spawnHooks === undefined) return;
  const hook = faultHook ?? (() => undefined);
  installed = replaceSymbols((loaded) => faultingSymbols(loaded, hook, spawnHooks));
}

/**
 * Sets or clears the fault hook: every checked libc call asks it first.
 *
 * @param hook The hook, or `undefined` to put the real symbols back.
 */
export function setFaultHook(hook: FaultHook | undefined): void {
  faultHook = hook;
  install();
}

/**
 * Sets or clears the spawn hooks: every spawn through libc calls them.
 *
 * @param hooks The hooks, or `undefined`.
 */
export function setSpawnHooks(hooks: SpawnHooks | undefined): void {
  spawnHooks = hooks;
  install();
}
