/**
 * The programs this module runs, found by absolute path, and how it spawns
 * them.
 *
 * A program is looked for in the system directories first (`/usr/bin`,
 * `/bin`, `/usr/sbin`, `/sbin`), once; only where none holds it is it left
 * to a `PATH` lookup, done by `posix_spawnp` at spawn time. A privileged
 * runtime thus does not run whatever `unshare` comes first in its `PATH`.
 *
 * Programs are spawned through libc (`ffi/process.ts`), not `Deno.Command`,
 * which libc does not ask about; the module asks Deno anyway, before
 * anything runs: a program is spawned only by a path that an
 * `--allow-run=NAME` flag (or a broader one) grants. Deno resolves that flag
 * through `PATH` when it starts, to one absolute path.
 *
 * @module
 */

import { O_PATH, SIGKILL } from "../../ffi/constants.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { PermissionError } from "../../ffi/permission_error.ts";
import { POLLIN, waitFor } from "../../ffi/poll.ts";
import {
  type ExitStatus,
  killAndReap,
  pidfdOpen,
  pipe,
  readSome,
  reap,
  signalPidfd,
  spawn,
} from "../../ffi/process.ts";
import { close, open } from "../../ffi/syscalls.ts";

/** Where programs are looked for before `PATH`, in order. */
export const SYSTEM_DIRS: readonly string[] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/**
 * Where `name` is: the first of `dirs` that holds it, as an absolute path, or
 * `name` itself (for `execvp` to look up in `PATH`) if none does.
 *
 * The check opens the path with `O_PATH` through libc, which needs
 * `--allow-ffi` but neither `--allow-read` nor `--allow-env`.
 *
 * @param name A program name, such as `"unshare"`.
 * @param dirs The directories to look in, in order.
 * @returns An absolute path, or `name`.
 * @throws {PermissionError} Without `--allow-ffi`.
 */
export function findProgram(name: string, dirs: readonly string[] = SYSTEM_DIRS): string {
  for (const dir of dirs) {
    const path = `${dir}/${name}`;
    let fd: number;
    try {
      fd = open(path, O_PATH);
    } catch (error) {
      if (error instanceof MountError) continue;
      throw error;
    }
    close(fd);
    return path;
  }
  return name;
}

function granted(command: string): boolean {
  return Deno.permissions.querySync({ name: "run", command }).state === "granted";
}

/**
 * A program this module runs, by name and purpose, found on first use:
 * importing the module looks for nothing.
 */
export class Program {
  /** Its name, such as `"unshare"`. */
  readonly name: string;
  /** What it is for, said in a permission error: `"which ..."`. */
  readonly purpose: string;
  #path: string | undefined;
  #granted = false;

  /**
   * Names a program.
   *
   * @param name Its name.
   * @param purpose What it is for, for a permission error.
   */
  constructor(name: string, purpose: string) {
    this.name = name;
    this.purpose = purpose;
  }

  /**
   * Its absolute path, or its name if no system directory holds it (then
   * `PATH` is searched at spawn time). Found once.
   *
   * @throws {PermissionError} Without `--allow-ffi`, on first use.
   */
  get path(): string {
    return this.#path ??= findProgram(this.name);
  }

  /**
   * Checks, without running anything, that Deno lets this process spawn it.
   * One permission query when it is granted, and none once it was.
   *
   * @throws {PermissionError} Naming the flag: `--allow-run=NAME` when no
   * copy of it is granted; `--allow-run=PATH` when the one granted is another
   * (an earlier one in `PATH`) than the one found in a system directory.
   * Without `--allow-ffi` if the program was not found yet.
   */
  checkPermission(): void {
    // A query costs ~40 µs, on every new mapping's get. Once granted, it is
    // not asked again: Deno grants nothing more without a prompt, and should
    // the permission be revoked, the spawn fails with the same error.
    if (this.#granted) return;
    if (this.#path !== undefined && granted(this.#path)) {
      this.#granted = true;
      return;
    }
    const { name } = this;
    const missing = (): PermissionError =>
      new PermissionError(`--allow-run=${name}`, `spawn ${name}, ${this.purpose}`);
    // Before anything else, and before finding it (which needs --allow-ffi).
    if (!granted(name) && !SYSTEM_DIRS.some((dir) => granted(`${dir}/${name}`))) throw missing();
    const path = this.path;
    if (granted(path)) {
      this.#granted = true;
      return;
    }
    if (path === name) throw missing();
    throw new PermissionError(
      `--allow-run=${path}`,
      `spawn ${path}, ${this.purpose} (--allow-run=${name} allows another ${name}, found first in PATH)`,
    );
  }
}

/**
 * Spawns `program` through libc, by its path, after the permission check:
 * its stdin, stdout and stderr are `stdio`.
 *
 * @param program The program.
 * @param args Its arguments.
 * @param stdio The fds that become its 0, 1 and 2.
 * @returns Its pid: a child that only its spawner reaps.
 * @throws {PermissionError} As {@linkcode Program.checkPermission}.
 * @throws {MountError} With op `"spawn PATH"`: code `ENOENT` if it is
 * missing, naming where it was looked for.
 */
function spawnFds(
  program: Program,
  args: string[],
  stdio: readonly [number, number, number],
): number {
  program.checkPermission();
  const path = program.path;
  try {
    return spawn(path, [path, ...args], stdio);
  } catch (error) {
    if (!(error instanceof MountError) || error.code !== "ENOENT") throw error;
    throw new MountError(`spawn ${path}`, {
      errno: error.errno,
      detail: missing(program),
      cause: error,
    });
  }
}

/** What a missing program's error says. */
function missing(program: Program): string {
  const path = program.path;
  return path === program.name
    ? `${path} was not found in ${SYSTEM_DIRS.join(", ")} or PATH`
    : `${path} is gone`;
}

/** What a program that ran to its end did. */
export interface RunResult {
  /** How it ended. */
  status: ExitStatus;
  /** What it wrote to stdout. */
  stdout: Uint8Array;
  /** What it wrote to stderr, as text, trimmed. */
  stderr: string;
}

/** A child spawned with three pipes: its pid, its pidfd, and this process's ends of its stdio. */
export interface PipedChild {
  /** Its pid: a child that only its spawner reaps. */
  pid: number;
  /** Its pidfd, which signals and reaps it. */
  pidfd: number;
  /** The write end of its stdin. */
  stdin: number;
  /** The read end of its stdout. */
  stdout: number;
  /** The read end of its stderr. */
  stderr: number;
}

/**
 * Spawns `program` through libc, with a pipe for each of its stdin, stdout
 * and stderr, and opens its pidfd. On failure, nothing is left open and
 * nothing runs.
 *
 * @param program The program.
 * @param args Its arguments.
 * @returns The child; the caller closes its four fds.
 * @throws {PermissionError} As {@linkcode Program.checkPermission}.
 * @throws {MountError} With op `"spawn PATH"` if it can't be spawned, or
 * the op of the pipe or pidfd that failed.
 */
export function spawnPiped(program: Program, args: string[]): PipedChild {
  const opened: number[] = [];
  let pid: number;
  let ours: number[];
  try {
    const [stdinRead, stdinWrite] = pipe();
    opened.push(stdinRead, stdinWrite);
    const [stdoutRead, stdoutWrite] = pipe();
    opened.push(stdoutRead, stdoutWrite);
    const [stderrRead, stderrWrite] = pipe();
    opened.push(stderrRead, stderrWrite);
    pid = spawnFds(program, args, [stdinRead, stdoutWrite, stderrWrite]);
    for (const fd of [stdinRead, stdoutWrite, stderrWrite]) close(fd);
    ours = [stdinWrite, stdoutRead, stderrRead];
  } catch (error) {
    for (const fd of opened) close(fd);
    throw error;
  }
  const [stdin, stdout, stderr] = ours;
  try {
    return { pid, pidfd: pidfdOpen(pid), stdin, stdout, stderr };
  } catch (error) {
    // Its pid is still its own (nothing else reaps it): killed and reaped
    // by pid, waiting, which SIGKILL makes short.
    killAndReap(pid);
    for (const fd of ours) close(fd);
    throw error;
  }
}

/**
 * Runs `program` to its end, through libc, with an empty stdin, and
 * collects its output: each wait is a `poll` on another thread.
 *
 * @param program The program.
 * @param args Its arguments.
 * @returns How it ended, and what it wrote.
 * @throws {PermissionError} As {@linkcode Program.checkPermission}.
 * @throws {MountError} With op `"spawn PATH"` if it can't be spawned.
 */
export async function run(program: Program, args: string[]): Promise<RunResult> {
  const child = spawnPiped(program, args);
  close(child.stdin);
  const [stdout, stderr] = [[] as Uint8Array[], [] as Uint8Array[]];
  try {
    // Both pipes, to their ends: either may fill while the other is read.
    // If reading one fails, the program is killed, which ends the other;
    // both settle before their fds close (a poll may still be on one).
    const kill = (error: unknown): never => {
      signalPidfd(child.pidfd, SIGKILL);
      throw error;
    };
    const drained = await Promise.allSettled([
      drainPipe(child.stdout, stdout).catch(kill),
      drainPipe(child.stderr, stderr).catch(kill),
    ]);
    const failed = drained.find((result) => result.status === "rejected");
    let status: ExitStatus | undefined;
    while ((status = reap(child.pidfd)) === undefined) await waitFor(child.pidfd, POLLIN, -1);
    if (failed !== undefined) throw failed.reason;
    return { status, stdout: concat(stdout), stderr: trimmedText(stderr) };
  } finally {
    for (const fd of [child.stdout, child.stderr, child.pidfd]) close(fd);
  }
}

/**
 * What is left in a pipe whose writer has exited, as text.
 *
 * @param fd The read end.
 * @returns The text, trimmed.
 */
export function drainText(fd: number): string {
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const chunk = readSome(fd, 4096);
      if (chunk.length === 0) break;
      chunks.push(chunk);
    }
  } catch {
    // What was read is all there is.
  }
  return trimmedText(chunks);
}

/** The chunks, as text, trimmed. */
function trimmedText(chunks: Uint8Array[]): string {
  return new TextDecoder().decode(concat(chunks)).trim();
}

/** Reads a pipe to its end, waiting on another thread whenever it is empty. */
async function drainPipe(fd: number, chunks: Uint8Array[]): Promise<void> {
  for (;;) {
    await waitFor(fd, POLLIN, -1);
    const chunk = readSome(fd, 65536);
    if (chunk.length === 0) return;
    chunks.push(chunk);
  }
}

/**
 * How a program ended, for a message: `"exit code 1"`, `"SIGKILL"`.
 *
 * @param status Its status.
 * @returns The words.
 */
export function describeExit(status: ExitStatus): string {
  if (status.signal === undefined) return `exit code ${status.code}`;
  return SIGNALS[status.signal] ?? `signal ${status.signal}`;
}

/** The names of the signals a program is likely to die of. */
const SIGNALS: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  13: "SIGPIPE",
  15: "SIGTERM",
};

/** The chunks, in one array. */
function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** `unshare`, which starts a helper in a new user namespace. */
export const UNSHARE: Program = new Program(
  "unshare",
  "which makes user namespaces for id mappings",
);

/** `nsenter`, which joins a user namespace to read its maps. */
export const NSENTER: Program = new Program(
  "nsenter",
  "which reads the mappings of a user namespace it joins",
);

/** `cat`, which `unshare` and `nsenter` run; this module never spawns it itself. */
export const CAT: Program = new Program("cat", "which unshare and nsenter run");
