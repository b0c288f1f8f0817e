// TEMPORARY: wrappers the ffi branch provides; replaced at its merge.
import { errno } from "./libc.ts";
import { MountError } from "./mount_error.ts";
import { assertPath } from "./syscalls.ts";

export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOFOLLOW = 0o400000;
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const PROC_SUPER_MAGIC = 0x9fa0;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

const lib = Deno.dlopen("libc.so.6", {
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  syscall4: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "buffer", "u64"],
    result: "i64",
  },
});
const enc = new TextEncoder();
const c = (s: string, what: string) => {
  assertPath(s, what);
  return enc.encode(s + "\0");
};
function fail(op: string, names: { source?: string; target?: string } = {}): never {
  const code = errno();
  throw new MountError(op, { errno: code, ...names });
}
export function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  const how = new BigUint64Array([BigInt(flags | 0o2000000), 0n, BigInt(resolve)]);
  const fd = Number(
    lib.symbols.syscall4(437n, dirfd, c(path, "path"), new Uint8Array(how.buffer), 24n),
  );
  if (fd < 0) fail("openat2", { source: path });
  return fd;
}
export function openAtMode(dirfd: number, path: string, flags: number, mode = 0): number {
  const fd = lib.symbols.openat(dirfd, c(path, "path"), flags | 0o2000000, mode);
  if (fd < 0) fail("open", { source: path });
  return fd;
}
export function mkdirat(dirfd: number, path: string, mode: number): void {
  if (lib.symbols.mkdirat(dirfd, c(path, "path"), mode) < 0) fail("mkdirat", { target: path });
}
export function fileInfo(fd: number, path = "", flags = 0x1000): { mode: number; mountId: number } {
  const buf = new Uint8Array(256);
  if (lib.symbols.statx(fd, c(path, "path"), flags, 0x1 | 0x2 | 0x1000, buf) < 0) fail("statx");
  const v = new DataView(buf.buffer);
  return { mode: v.getUint16(0x1c, true), mountId: Number(v.getBigUint64(0x90, true)) };
}
export function fstatfsType(fd: number): number {
  const w = new BigInt64Array(16);
  if (lib.symbols.fstatfs(fd, new Uint8Array(w.buffer)) < 0) fail("fstatfs");
  return Number(w[0]);
}
