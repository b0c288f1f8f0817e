/**
 * Child processes through libc: pipes, `posix_spawnp`, and a pidfd to signal
 * and reap the child by. What `Deno.Command` does, without its first-spawn
 * cost (~5 ms in a fresh process) or its streams: the userns helper needs
 * three pipes and one byte each way.
 *
 * A child spawned here is reaped only here (Deno reaps only its own
 * children, by pid), so its pid stays its own until {@linkcode reap}: a pidfd
 * opened right after the spawn names it, and only it.
 *
 * @module
 */

import { F_DUPFD_CLOEXEC, O_CLOEXEC, SIGKILL } from "./constants.ts";
import { check, cString } from "./call.ts";
import { errnoView, libc } from "./libc.ts";
import { MountError } from "./mount_error.ts";

/** waitid(2): the id is a pid, or a pidfd. */
const P_PID = 1;
const P_PIDFD = 3;
/** waitid(2): wait for exits; do not block. */
const WEXITED = 4;
const WNOHANG = 1;
/** siginfo_t si_code of a child that exited, or was killed. */
const CLD_EXITED = 1;
/** The size of posix_spawn_file_actions_t, rounded up: 80 bytes in glibc. */
const OPAQUE = 256;

/** No posix_spawnattr_t: the defaults. */
const NULL_ATTR = null;

/** The child's environment: none (`unshare` and `cat` need none). */
const NO_ENVIRONMENT = new Uint8Array(new BigUint64Array(1).buffer);

/**
 * pipe2(2), close-on-exec. Neither end is 0, 1 or 2, even with Deno's own
 * stdio closed, so that a child's stdio is never dup'd over another pipe end.
 *
 * @returns The read end and the write end.
 * @throws {MountError} With op `"pipe2"`.
 */
export function pipe(): [number, number] {
  const c = libc("pipe2");
  const fds = new Int32Array(2);
  check(c.pipe2(new Uint8Array(fds.buffer), O_CLOEXEC), errnoView[0], "pipe2");
  for (let i = 0; i < 2; i++) {
    if (fds[i] > 2) continue;
    // errno read in the call's own statement, as everywhere.
    const moved = c.fcntl(fds[i], F_DUPFD_CLOEXEC, 3), code = errnoView[0];
    c.close(fds[i]);
    if (moved < 0) {
      c.close(fds[1 - i]);
      check(moved, code, "fcntl(F_DUPFD_CLOEXEC)");
    }
    fds[i] = moved;
  }
  return [fds[0], fds[1]];
}

/**
 * Spawns `file` with `posix_spawnp`: its stdin, stdout and stderr dup'd from
 * `stdio`, and no environment. A `file` with a slash is run as is; one
 * without is looked up in this process's `PATH`. Every other fd of this
 * process is close-on-exec. The child keeps the calling thread's signal mask
 * (none blocked, on Deno's threads) and the signals it ignores (Deno ignores
 * `SIGPIPE`; then a write to a closed pipe fails with EPIPE instead): what
 * `unshare` and `cat` do is the same either way, and setting them would
 * bind five more symbols.
 *
 * @param file The program.
 * @param argv Its arguments, the first its name.
 * @param stdio The fds that become its 0, 1 and 2.
 * @returns Its pid.
 * @throws {MountError} With op `"spawn FILE"` and the error number (ENOENT
 * for a missing program).
 * @throws {TypeError} For a string with a NUL byte.
 */
export function spawn(
  file: string,
  argv: readonly string[],
  stdio: readonly [number, number, number],
): number {
  const path = cString(file, "program");
  const argvBytes = argvBuffer(argv);
  const c = libc("posix_spawnp");
  const actions = new Uint8Array(OPAQUE);
  const op = `spawn ${file}`;
  fail(c.posix_spawn_file_actions_init(actions), op);
  try {
    for (let fd = 0; fd < 3; fd++) {
      fail(c.posix_spawn_file_actions_adddup2(actions, stdio[fd], fd), op);
    }
    const pid = new Int32Array(1);
    fail(
      c.posix_spawnp(
        new Uint8Array(pid.buffer),
        path,
        actions,
        NULL_ATTR,
        argvBytes,
        NO_ENVIRONMENT,
      ),
      op,
    );
    return pid[0];
  } finally {
    c.posix_spawn_file_actions_destroy(actions);
  }
}

/**
 * An argv in one buffer: the NULL-terminated array of pointers, then the
 * strings it points to. The call keeps the one buffer it is given alive, and
 * with it every string.
 */
function argvBuffer(argv: readonly string[]): Uint8Array<ArrayBuffer> {
  const strings = argv.map((arg) => cString(arg, "argument"));
  const head = 8 * (strings.length + 1);
  const bytes = new Uint8Array(head + strings.reduce((n, s) => n + s.length, 0));
  const pointers = new BigUint64Array(bytes.buffer, 0, strings.length + 1);
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
  let offset = head;
  strings.forEach((s, i) => {
    bytes.set(s, offset);
    pointers[i] = base + BigInt(offset);
    offset += s.length;
  });
  return bytes;
}

/** Throws for a posix_spawn call's returned error number. */
function fail(result: number, op: string): void {
  if (result !== 0) throw new MountError(op, { errno: result });
}

/**
 * pidfd_open(2): an fd that names the process `pid` (close-on-exec).
 *
 * @param pid A child of this process, not yet reaped.
 * @returns The pidfd.
 * @throws {MountError} With op `"pidfd_open"`.
 */
export function pidfdOpen(pid: number): number {
  return check(libc("pidfd_open").pidfd_open(pid, 0), errnoView[0], "pidfd_open");
}

/**
 * Kills a child that has no pidfd (its pidfd_open failed) and reaps it,
 * waiting: `SIGKILL` ends it at once. Its pid is still its own: nothing
 * else reaps it.
 *
 * @param pid A child of this process, not yet reaped.
 */
export function killAndReap(pid: number): void {
  const c = libc("kill");
  c.kill(pid, SIGKILL);
  c.waitid(P_PID, pid, new Uint8Array(128), WEXITED);
}

/**
 * pidfd_send_signal(2): signals the process a pidfd names, and no other.
 *
 * @param pidfd Its pidfd.
 * @param signal The signal's number.
 * @returns Whether it was sent: false once the process has exited (ESRCH).
 */
export function signalPidfd(pidfd: number, signal: number): boolean {
  return libc("pidfd_send_signal").pidfd_send_signal(pidfd, signal) === 0;
}

/** How a child ended: its exit code, or the signal that killed it. */
export interface ExitStatus {
  /** Its exit code; 128 + the signal's number if a signal killed it, as a shell says. */
  code: number;
  /** The number of the signal that killed it, if one did. */
  signal?: number;
}

/**
 * waitid(2) of the child a pidfd names, without blocking: reaps it if it has
 * exited.
 *
 * @param pidfd Its pidfd.
 * @returns How it ended, or `undefined` if it still runs.
 * @throws {MountError} With op `"waitid"`: ECHILD if it was reaped already.
 */
export function reap(pidfd: number): ExitStatus | undefined {
  const info = new Int32Array(32); // siginfo_t: 128 bytes
  check(
    libc("waitid").waitid(P_PIDFD, pidfd, new Uint8Array(info.buffer), WEXITED | WNOHANG),
    errnoView[0],
    "waitid",
  );
  // si_signo, si_errno, si_code, then (for SIGCHLD) si_pid, si_uid, si_status.
  if (info[4] === 0) return undefined;
  const code = info[2];
  const status = info[6];
  return code === CLD_EXITED ? { code: status } : { code: 128 + status, signal: status };
}

/**
 * read(2) once: what is there, up to `size` bytes. Call it once the fd is
 * readable, or at EOF.
 *
 * @param fd The fd.
 * @param size The most to read.
 * @returns The bytes read (none at EOF).
 * @throws {MountError} With op `"read"`.
 */
export function readSome(fd: number, size: number): Uint8Array {
  const buffer = new Uint8Array(size);
  const n = check(Number(libc("read").read(fd, buffer, BigInt(size))), errnoView[0], "read");
  return buffer.subarray(0, n);
}
