/**
 * Resolves paths inside a root as a process under an older container
 * seccomp profile does: a filter answers openat2 with ENOSYS, so
 * `resolveInRoot` takes its component walk. Prints JSON: `openat2`, what a
 * direct openat2 gave (the filter's ENOSYS), and `results`, each path's
 * outcome as `tests/in_root_test.ts` writes it.
 *
 *     deno run --allow-all tests/_seccomp_probe.ts ROOT PATH...
 *
 * @module
 */

import { AT_FDCWD, O_DIRECTORY, O_PATH, RESOLVE_IN_ROOT } from "../ffi/constants.ts";
import { close, open, openat2 } from "../ffi/syscalls.ts";
import { resolveInRoot } from "../lib/in_root.ts";
import { outcome } from "./_in_root.ts";

const X86_64 = Deno.build.arch === "x86_64";
const libc = Deno.dlopen(
  "libc.so.6",
  {
    prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
    syscall: { parameters: ["i64", "u64", "u64", "buffer"], result: "i64" },
  } as const,
).symbols;

/** Installs, on every thread, a filter that answers openat2 (437) with ENOSYS. */
function denyOpenat2(): void {
  const filter = new DataView(new ArrayBuffer(6 * 8));
  const insns: [number, number, number, number][] = [
    [0x20, 0, 0, 4], // ld [arch]
    [0x15, 0, 3, X86_64 ? 0xc000003e : 0xc00000b7], // jeq AUDIT_ARCH_* ? next : allow
    [0x20, 0, 0, 0], // ld [nr]
    [0x15, 0, 1, 437], // jeq openat2 ? next : allow
    [0x06, 0, 0, 0x00050000 | 38], // ret SECCOMP_RET_ERRNO | ENOSYS
    [0x06, 0, 0, 0x7fff0000], // ret SECCOMP_RET_ALLOW
  ];
  insns.forEach(([code, jt, jf, k], i) => {
    filter.setUint16(i * 8, code, true);
    filter.setUint8(i * 8 + 2, jt);
    filter.setUint8(i * 8 + 3, jf);
    filter.setUint32(i * 8 + 4, k, true);
  });
  const program = new DataView(new ArrayBuffer(16));
  program.setUint16(0, insns.length, true);
  const pointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(filter.buffer));
  program.setBigUint64(8, BigInt(pointer), true);
  if (libc.prctl(38, 1n, 0n, 0n, 0n) !== 0) throw new Error("prctl(PR_SET_NO_NEW_PRIVS) failed");
  const SYS_seccomp = X86_64 ? 317n : 277n;
  // SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC: every thread of the process.
  const result = libc.syscall(SYS_seccomp, 1n, 1n, new Uint8Array(program.buffer));
  if (result !== 0n) throw new Error(`seccomp(SECCOMP_SET_MODE_FILTER) returned ${result}`);
}

const [root, ...paths] = Deno.args;
denyOpenat2();
let direct: string;
try {
  close(openat2(AT_FDCWD, "/", O_PATH, RESOLVE_IN_ROOT));
  direct = "allowed";
} catch (error) {
  direct = (error as { code?: string }).code ?? String(error);
}
const rootFd = open(root, O_PATH | O_DIRECTORY);
const results = paths.map((path) => outcome(() => resolveInRoot(rootFd, path, false)));
close(rootFd);
console.log(JSON.stringify({ openat2: direct, results }));
