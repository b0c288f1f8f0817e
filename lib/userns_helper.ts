/**
 * The helper process that makes a user namespace: `unshare --user -- cat`.
 *
 * The parent writes one byte to its stdin; the echo proves that it runs in
 * its new namespace. The parent then pins the helper's `/proc/PID` directory,
 * writes its `setgroups`, `uid_map` and `gid_map` through that directory, and
 * opens its `ns/user`. Closing its stdin lets it go: `cat` exits at EOF, and
 * the parent reaps it. A helper whose parent dies sees the same EOF and exits
 * too.
 *
 * @module
 */

import { O_DIRECTORY, O_PATH, O_RDONLY } from "../ffi/constants.ts";
import { errnoValue } from "../ffi/errno.ts";
import { MountError } from "../ffi/mount_error.ts";
import { spawn } from "../ffi/process.ts";
import { close, open, openAt, writeOnce } from "../ffi/syscalls.ts";
import { OwnedFd } from "./fd.ts";
import { formatIDMaps } from "./idmap.ts";
import type { Mapping } from "./mount.ts";

/** The program the helper runs in its new user namespace. */
export const HELPER = { command: "unshare", args: ["--user", "--", "cat"] } as const;
const PING = new Uint8Array([0x2e]);
const ECHO_SIZE = 16;
const DONE = { done: true } as const;

/** How a helper ended: its exit status, and what it wrote to stderr. */
export interface HelperEnd {
  /** The exit status. */
  status: Deno.CommandStatus;
  /** Its stderr, trimmed, if asked for; else empty. */
  stderr: string;
}

/** The helper exited (or closed its stdout) before it echoed. */
export class HelperExited extends Error {}

/**
 * One helper process, from spawn to reaping.
 *
 * @example Make a user namespace by hand
 * ```ts
 * import { Helper } from "./userns_helper.ts";
 * const range = [{ containerID: 0, hostID: 100000, size: 65536 }];
 * const mapping = { uidMappings: range, gidMappings: range };
 * const helper = new Helper(false);
 * await helper.ready(AbortSignal.timeout(10_000), 10_000);
 * using userns = helper.map(mapping);
 * await helper.end();
 * ```
 */
export class Helper {
  /** The helper's pid. */
  readonly pid: number;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stdout: ReadableStreamBYOBReader;
  #proc = -1;
  #exited = false;
  #ended: Promise<HelperEnd> | undefined;
  readonly #done = Promise.withResolvers<void>();

  /**
   * Spawns a helper. Its stderr is read only once it has failed (a pipe
   * holds what `unshare` may say), so that a helper waiting idle has no read
   * pending. Its stdout is read into small buffers of ours: Deno's default
   * reads allocate 64 KiB each, which a thousand helpers turn into megabytes
   * of RSS.
   *
   * @param pooled Whether it may wait idle in a pool: then it does not keep
   * Deno running until {@linkcode Helper.ref}.
   * @throws {MountError} With op `"spawn unshare"` if it can't be spawned.
   * @throws {Deno.errors.NotCapable} Without `--allow-run`.
   */
  constructor(pooled: boolean) {
    const child = spawn(HELPER.command, {
      args: [...HELPER.args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }, "which makes user namespaces for id mappings");
    this.#child = child;
    this.pid = child.pid;
    if (pooled) child.unref();
    this.#stdin = child.stdin.getWriter();
    this.#stdout = child.stdout.getReader({ mode: "byob" });
    child.status.then(() => {
      this.#exited = true;
    }, () => {});
  }

  /** Settles once the helper has exited and Deno has reaped it. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** Settles once {@linkcode Helper.end} has reaped it; does not end it. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** Whether it has exited and been reaped. */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Pings the helper and waits for the echo, which it sends from its new
   * namespace; then pins its `/proc/PID` directory. Between the ping and
   * {@linkcode Helper.end}, nothing reads its stdout.
   *
   * @param signal Rejects the wait with its reason.
   * @param timeout How long it may take, in ms.
   * @throws {HelperExited} If it exits first.
   * @throws {MountError} With code `ETIMEDOUT` if it is not ready in time.
   */
  async ready(signal: AbortSignal, timeout: number): Promise<void> {
    const echo = (async () => {
      await this.#stdin.write(PING).catch(() => {});
      const { done } = await this.#stdout.read(new Uint8Array(ECHO_SIZE));
      if (done) throw new HelperExited();
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new MountError("userns helper", {
              errno: errnoValue("ETIMEDOUT"),
              detail: `${HELPER.command} did not enter a new user namespace within ${timeout} ms`,
            }),
          ),
        timeout,
      );
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([echo, stop]);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort!);
      // The echo settles once the helper is killed; never leave it dangling.
      echo.catch(() => {});
    }
    // Ended meanwhile (its exit was noticed first): there is nothing to pin.
    if (this.#ended !== undefined) throw new HelperExited();
    // It echoed, so it is alive: pin its /proc directory. Writes through it
    // reach this process or fail with ESRCH, never a process reusing the pid.
    this.#proc = open(`/proc/${this.pid}`, O_PATH | O_DIRECTORY);
  }

  /**
   * Maps the helper's user namespace and opens it. Call it once, after
   * {@linkcode Helper.ready}.
   *
   * @param mapping The checked mapping.
   * @returns A close-on-exec fd of the namespace.
   * @throws {MountError} If the kernel refuses a map (naming the file and the
   * text), or with code `ESRCH` if the helper is gone.
   */
  map(mapping: Mapping): OwnedFd {
    this.#write("setgroups", "deny\n");
    this.#write("uid_map", formatIDMaps(mapping.uidMappings));
    this.#write("gid_map", formatIDMaps(mapping.gidMappings));
    try {
      return new OwnedFd(openAt(this.#proc, "ns/user", O_RDONLY));
    } catch (error) {
      if (!(error instanceof MountError)) throw error;
      throw new MountError(error.op, {
        errno: error.errno,
        source: `/proc/${this.pid}/ns/user`,
        cause: error,
      });
    }
  }

  /** Makes the helper keep Deno running again, for one that waited in a pool. */
  ref(): void {
    this.#child.ref();
  }

  /** Kills the helper, if it still runs; {@linkcode Helper.end} reaps it. */
  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
  }

  /**
   * Lets the helper go (EOF on its stdin ends it) and reaps it. Calling it
   * again returns the same promise: the first call decides about stderr.
   *
   * @param stderr Whether to read its stderr, for an error message.
   * @returns How it ended.
   */
  end(stderr = false): Promise<HelperEnd> {
    return this.#ended ??= this.#end(stderr);
  }

  async #end(wantStderr: boolean): Promise<HelperEnd> {
    try {
      this.#unpin();
      this.#child.ref();
      const stderr = wantStderr
        ? new Response(this.#child.stderr).text().catch(() => "")
        : this.#child.stderr.cancel().then(() => "", () => "");
      await this.#stdin.close().catch(() => {});
      while (!(await this.#stdout.read(new Uint8Array(ECHO_SIZE)).catch(() => DONE)).done) {
        // Drain whatever it echoed.
      }
      const status = await this.#child.status;
      return { status, stderr: (await stderr).trim() };
    } finally {
      this.#unpin();
      this.#done.resolve();
    }
  }

  #unpin(): void {
    if (this.#proc < 0) return;
    close(this.#proc);
    this.#proc = -1;
  }

  #write(file: string, text: string): void {
    try {
      writeOnce(file, text, this.#proc);
    } catch (error) {
      if (!(error instanceof MountError)) throw error;
      throw new MountError(error.op, {
        errno: error.errno,
        target: `/proc/${this.pid}/${file}`,
        hint: `(writing ${JSON.stringify(text.trimEnd())})`,
        cause: error,
      });
    }
  }
}

/**
 * Spawns a helper, maps its new user namespace and opens it; the helper is
 * reaped before this returns.
 *
 * @param mapping The checked mapping.
 * @param signal Kills the helper when aborted.
 * @param timeout How long the helper may take to enter its namespace, in ms.
 * @returns An fd of the namespace.
 * @throws {MountError} If the helper can't be spawned, exits early, is not
 * ready in time, or the kernel refuses a map.
 * @throws The signal's reason, once aborted.
 *
 * @example Make a user namespace without a cache
 * ```ts
 * import { createUserns } from "./userns_helper.ts";
 * const range = [{ containerID: 0, hostID: 100000, size: 65536 }];
 * const mapping = { uidMappings: range, gidMappings: range };
 * using userns = await createUserns(mapping, new AbortController().signal, 10_000);
 * ```
 */
export async function createUserns(
  mapping: Mapping,
  signal: AbortSignal,
  timeout: number,
): Promise<OwnedFd> {
  signal.throwIfAborted();
  const helper = new Helper(false);
  let userns: OwnedFd | undefined;
  let failure: unknown;
  try {
    await helper.ready(signal, timeout);
    userns = helper.map(mapping);
  } catch (error) {
    failure = error;
    helper.kill();
  }
  const { status, stderr } = await helper.end(failure !== undefined);
  if (failure === undefined) return userns!;
  if (failure instanceof HelperExited) throw exitedError(status, stderr);
  throw failure;
}

/**
 * The error for a helper that exited before it was ready.
 *
 * @param status Its exit status.
 * @param stderr What it wrote to stderr.
 * @returns The error.
 *
 * @example Report an early exit
 * ```ts
 * import { exitedError } from "./userns_helper.ts";
 * throw exitedError({ success: false, code: 1, signal: null }, "unshare: failed");
 * ```
 */
export function exitedError(status: Deno.CommandStatus, stderr: string): MountError {
  return new MountError("userns helper", {
    detail: `${HELPER.command} exited before entering a new user namespace (${
      status.signal ?? `exit code ${status.code}`
    })${stderr ? `: ${stderr}` : ""}`,
  });
}
