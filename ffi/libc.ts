/**
 * The libc symbol table: the one place that calls `Deno.dlopen`.
 *
 * libc is opened once, at module load when `--allow-ffi` is already granted,
 * or else on first use. A missing permission becomes a clear error naming the
 * flag and the call that needed it.
 *
 * @module
 */

import { PermissionError } from "./permission_error.ts";

/** Every libc symbol this module calls. No errno-setting symbol is `nonblocking`. */
export const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  geteuid: { parameters: [], result: "u32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64"], result: "i32" },
  mount: {
    parameters: ["buffer", "buffer", "buffer", "u64", "buffer"],
    result: "i32",
  },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // Joining another mount namespace, from a Worker's own thread.
  unshare: { parameters: ["i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  chdir: { parameters: ["buffer"], result: "i32" },
  fchdir: { parameters: ["i32"], result: "i32" },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  // glibc >= 2.36 wraps the new mount API; older ones need syscall(2).
  open_tree: {
    parameters: ["i32", "buffer", "u32"],
    result: "i32",
    optional: true,
  },
  move_mount: {
    parameters: ["i32", "buffer", "i32", "buffer", "u32"],
    result: "i32",
    optional: true,
  },
  mount_setattr: {
    parameters: ["i32", "buffer", "u32", "buffer", "usize"],
    result: "i32",
    optional: true,
  },
  syscall_open_tree: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "u32"],
    result: "i64",
    optional: true,
  },
  syscall_move_mount: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "i32", "buffer", "u32"],
    result: "i64",
    optional: true,
  },
  syscall_mount_setattr: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "u32", "buffer", "u64"],
    result: "i64",
    optional: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The loaded symbols. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Syscall numbers of the new mount API; equal on x86_64 and aarch64. */
export const SYS_open_tree = 428n;
/** See {@linkcode SYS_open_tree}. */
export const SYS_move_mount = 429n;
/** See {@linkcode SYS_open_tree}. */
export const SYS_mount_setattr = 442n;

let symbols: Libc | undefined;
let errnoView: Int32Array | undefined;

function load(call: string): Libc {
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new PermissionError("--allow-ffi", `call ${call}`, { cause: error });
    }
    throw error;
  }
  const location = lib.symbols.__errno_location();
  if (location === null) throw new Error("Cannot locate errno: got NULL");
  errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(location, 4));
  return lib.symbols;
}

/**
 * The libc symbols, loaded on first use if they were not at module load.
 *
 * @param call The call that needs them, named in a permission error.
 * @returns The symbols.
 * @throws {PermissionError} Without `--allow-ffi`: a `Deno.errors.NotCapable`
 * that names the flag and the call.
 *
 * @example Call getpid-like symbols directly
 * ```ts
 * import { libc } from "./libc.ts";
 * libc("close").close(-1);
 * ```
 */
export function libc(call: string): Libc {
  return symbols ??= load(call);
}

/**
 * The errno of the calling thread, read through a view over
 * `__errno_location()`. Read it right after the failing call, before
 * anything allocates.
 *
 * @returns The current errno.
 *
 * @example Read errno after a failed call
 * ```ts
 * import { errno, libc } from "./libc.ts";
 * if (libc("close").close(-1) < 0) console.log(errno()); // 9 (EBADF)
 * ```
 */
export function errno(): number {
  return errnoView![0];
}

if (Deno.permissions.querySync?.({ name: "ffi" }).state === "granted") {
  symbols = load("dlopen");
}
