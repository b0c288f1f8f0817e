/**
 * Calls the tests make that the library does not: mount(2), to build
 * fixtures, and geteuid(2). They are bound here, at this module's load (so
 * no library is opened inside a test), not in `ffi/`, which holds only what
 * the library calls.
 *
 * @module
 */

import { check, type CPath, cString, type PathNames, tempCString } from "../ffi/call.ts";

const lib = Deno.dlopen(
  "libc.so.6",
  {
    mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
    geteuid: { parameters: [], result: "u32" },
    symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  } as const,
).symbols;
const errnoView = new Int32Array(
  Deno.UnsafePointerView.getArrayBuffer(lib.__errno_location()!, 4),
);

/**
 * mount(2).
 *
 * @param source The source path, or `null`.
 * @param target The target path.
 * @param fstype The filesystem type, or `null`.
 * @param flags `MS_*` flags.
 * @param data Filesystem options, or `null`.
 * @param names The op and paths to name in an error.
 * @throws {MountError} With op `"mount"` (or `names.op`) if the call fails.
 */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
  names: PathNames = {},
): void {
  const csource = source === null ? null : cString(source, "mount source");
  const ctarget = cString(target, "mount target");
  const ctype = fstype === null ? null : cString(fstype, "filesystem type");
  const cdata = data === null ? null : cString(data, "mount data");
  check(
    lib.mount(csource, ctarget, ctype, BigInt(flags >>> 0), cdata),
    errnoView[0],
    names.op ?? "mount",
    names.source ?? source ?? undefined,
    names.target ?? target,
  );
}

/**
 * geteuid(2): the effective uid, without `--allow-sys`.
 *
 * @returns The effective uid in this process's user namespace.
 */
export function geteuid(): number {
  return lib.geteuid();
}

/**
 * symlinkat(2): a symbolic link at `path` relative to `dirfd` whose target
 * is `target`, bytes that need not be UTF-8.
 *
 * @param target What the link names.
 * @param dirfd A directory fd.
 * @param path The link.
 * @throws {MountError} With op `"symlinkat"`.
 */
export function symlinkat(target: CPath, dirfd: number, path: string): void {
  const ctarget = tempCString(target, "link target");
  const cpath = cString(path, "link");
  check(lib.symlinkat(ctarget, dirfd, cpath), errnoView[0], "symlinkat", undefined, path);
}
