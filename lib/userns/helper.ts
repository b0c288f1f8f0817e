/**
 * The helper process that makes a user namespace:
 * `/usr/bin/unshare --user -- /usr/bin/cat` (wherever the system keeps them),
 * spawned through libc (`posix_spawnp`, `ffi/process.ts`), not
 * `Deno.Command`: a first `Deno.Command` spawn costs ~5 ms in a fresh
 * process, and its streams more; this costs ~0.6 ms once bound.
 *
 * Right after the spawn, the parent opens the helper's pidfd and pins its
 * `/proc/PID` directory. Nothing but {@linkcode Helper.end} reaps it, so
 * every signal goes to this process, and every write to its `/proc` files
 * goes to it or fails with `ESRCH`, never to a process that reuses its pid.
 * The parent then writes one byte to its stdin; the echo proves that it runs
 * in its new namespace (the handshake). The parent writes its `setgroups`,
 * `uid_map` and `gid_map` through the pinned directory, and opens its
 * `ns/user`. Closing its stdin lets it go: `cat` exits at EOF, and the parent
 * reaps it. A helper whose parent dies sees the same EOF and exits too.
 *
 * Every wait on a helper (the echo, its exit) is a `poll` on another thread,
 * bounded by a timeout; a helper that overstays it is killed with `SIGKILL`,
 * which also ends a stopped one. An idle helper has no wait pending, so it
 * never keeps Deno running.
 *
 * @module
 */

import { O_DIRECTORY, O_PATH, O_RDONLY, O_WRONLY, SIGKILL } from "../../ffi/constants.ts";
import { errnoValue } from "../../ffi/errno.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { POLLIN, waitFor } from "../../ffi/poll.ts";
import { type ExitStatus, readSome, reap, signalPidfd } from "../../ffi/process.ts";
import { close, open, openAt, writeOnce, writeText } from "../../ffi/syscalls.ts";
import { afterThisTurn } from "../async.ts";
import { OwnedFd } from "../fd.ts";
import { formatIDMaps } from "./idmap.ts";
import type { Mapping } from "../mount.ts";
import { mappableRanges } from "../hints.ts";
import { CAT, describeExit, drainText, spawnPiped, UNSHARE } from "./programs.ts";
import type { Release, SpawnLimit } from "./spawn_limit.ts";

const PING = ".";
const ECHO_SIZE = 16;

/** How a helper ended: its exit status, and what it wrote to stderr. */
export interface HelperEnd {
  /** The exit status; `undefined` if it was still not reaped after `SIGKILL` and the timeout. */
  status?: ExitStatus;
  /** Its stderr, trimmed, if asked for; else empty. */
  stderr: string;
}

/** The helper exited (or closed its stdout) before it echoed. */
export class HelperExited extends Error {}

/** Options of a {@linkcode Helper}. */
export interface HelperOptions {
  /** Bounds each wait on it, in ms. */
  timeout: number;
  /** Called once it is reaped (or given up on): gives its spawn permit back. */
  onGone?: Release;
}

/**
 * One helper process, from spawn to reaping.
 */
export class Helper {
  /** The helper's pid. */
  readonly pid: number;
  readonly #pidfd: number;
  #stdin: number;
  readonly #stdout: number;
  readonly #stderr: number;
  readonly #timeout: number;
  readonly #onGone: Release | undefined;
  readonly #gone = Promise.withResolvers<void>();
  /** The polls on its fds that have not returned: its fds stay open until they have. */
  readonly #polls = new Set<Promise<number>>();
  #proc = -1;
  /** From {@linkcode Helper.prepare}: its namespace, uid_map and gid_map. */
  #prepared: { userns: number; uidMap: number; gidMap: number } | undefined;
  #pinError: unknown;
  #entered = false;
  #status: ExitStatus | undefined;
  #end: Promise<HelperEnd> | undefined;
  /** From {@linkcode Helper.letGo}: its end is scheduled. */
  #cancelLetGo: (() => void) | undefined;

  /**
   * Spawns a helper, opens its pidfd and pins its `/proc/PID`. Nothing else
   * reaps it, so its pid stays its own until {@linkcode Helper.end} does.
   * Its stderr is read only once it has failed (a pipe holds what `unshare`
   * may say).
   *
   * @param options The timeout, and what to call once it is reaped.
   * @throws {MountError} With op `"spawn PATH"` if it can't be spawned; then
   * `onGone` is not called.
   * @throws {PermissionError} Without `--allow-run` for `unshare`.
   */
  constructor(options: HelperOptions) {
    this.#timeout = options.timeout;
    this.#onGone = options.onGone;
    const child = spawnPiped(UNSHARE, ["--user", "--", CAT.path]);
    this.pid = child.pid;
    this.#pidfd = child.pidfd;
    this.#stdin = child.stdin;
    this.#stdout = child.stdout;
    this.#stderr = child.stderr;
    try {
      this.#proc = open(`/proc/${this.pid}`, O_PATH | O_DIRECTORY);
    } catch (error) {
      this.#pinError = error;
      this.kill();
    }
  }

  /** Settles once {@linkcode Helper.end} is over: reaped, or given up on. */
  get gone(): Promise<void> {
    return this.#gone.promise;
  }

  /** Whether it echoed from its new namespace. */
  get entered(): boolean {
    return this.#entered;
  }

  /**
   * Whether it is on its way out: {@linkcode Helper.end} was called, or is
   * scheduled ({@linkcode Helper.letGo}).
   */
  get ending(): boolean {
    return this.#end !== undefined || this.#cancelLetGo !== undefined;
  }

  /**
   * Calls {@linkcode Helper.end} on a timer, once this turn is over: for a
   * helper whose namespace is open and handed over, so that closing its
   * pipes does not fall on the caller's turn. It counts as
   * {@linkcode Helper.ending} from now on.
   */
  letGo(): void {
    if (this.ending) return;
    this.#cancelLetGo = afterThisTurn(() => void this.end());
  }

  /**
   * Pings the helper and waits for the echo, which it sends from its new
   * namespace. The wait runs `poll` on another thread; an abort kills the
   * helper, which ends it.
   *
   * @param signal Rejects the wait with its reason (and kills the helper).
   * @throws {HelperExited} If it exits first.
   * @throws {MountError} With code `ETIMEDOUT` if it does not echo in time,
   * or the error of pinning its `/proc/PID`.
   */
  async handshake(signal: AbortSignal): Promise<void> {
    if (this.#pinError !== undefined) throw this.#pinError;
    signal.throwIfAborted();
    try {
      writeText(this.#stdin, PING, "stdin");
    } catch (error) {
      // EPIPE: it has exited, and the poll sees its stdout's end.
      if (!(error instanceof MountError) || error.code !== "EPIPE") throw error;
    }
    const onAbort = (): void => this.kill();
    signal.addEventListener("abort", onAbort, { once: true });
    let events: number;
    try {
      events = await this.#poll(this.#stdout, POLLIN, this.#timeout);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    signal.throwIfAborted();
    if (events === 0) {
      throw new MountError("userns helper", {
        errno: errnoValue("ETIMEDOUT"),
        detail: `${UNSHARE.path} did not enter a new user namespace within ${this.#timeout} ms`,
      });
    }
    if (readSome(this.#stdout, ECHO_SIZE).length === 0) throw new HelperExited();
    this.#entered = true;
  }

  /**
   * Does all of a map that does not depend on the mapping: denies
   * `setgroups`, and opens the namespace, its `uid_map` and its `gid_map`. A
   * pooled helper does it while it waits, so that a get only writes two
   * maps; {@linkcode Helper.map} does it if it was not done. Call it after
   * {@linkcode Helper.handshake}.
   *
   * @throws {MountError} As {@linkcode Helper.map}; then nothing is left
   * open.
   */
  prepare(): void {
    if (this.#prepared !== undefined) return;
    this.#write("setgroups", "deny\n");
    const opened: number[] = [];
    const openHere = (file: string, flags: number): number => {
      try {
        const fd = openAt(this.#proc, file, flags);
        opened.push(fd);
        return fd;
      } catch (error) {
        for (const fd of opened) close(fd);
        if (!(error instanceof MountError)) throw error;
        throw error.withNames({ source: `/proc/${this.pid}/${file}` });
      }
    };
    this.#prepared = {
      userns: openHere("ns/user", O_RDONLY),
      uidMap: openHere("uid_map", O_WRONLY),
      gidMap: openHere("gid_map", O_WRONLY),
    };
  }

  /**
   * Maps the helper's user namespace and opens it, through its pinned
   * `/proc/PID`. Call it once, after {@linkcode Helper.handshake}.
   *
   * @param mapping The checked mapping.
   * @returns A close-on-exec fd of the namespace.
   * @throws {MountError} If the kernel refuses a map (naming the file and the
   * text), or with code `ESRCH` if the helper is gone.
   */
  map(mapping: Mapping): OwnedFd {
    this.prepare();
    const { userns, uidMap, gidMap } = this.#prepared!;
    this.#prepared = undefined;
    try {
      this.#writeTo(uidMap, "uid_map", formatIDMaps(mapping.uidMappings));
      this.#writeTo(gidMap, "gid_map", formatIDMaps(mapping.gidMappings));
    } catch (error) {
      close(userns);
      throw error;
    } finally {
      close(uidMap);
      close(gidMap);
    }
    return new OwnedFd(userns);
  }

  /** Kills the helper, if it still runs; {@linkcode Helper.end} reaps it. */
  kill(): void {
    if (this.#status === undefined) signalPidfd(this.#pidfd, SIGKILL);
  }

  /**
   * Lets the helper go (EOF on its stdin ends it) and reaps it. It has the
   * timeout to exit, then it is killed; if it is still not reaped a timeout
   * later (stuck in the kernel), it is given up on: a zombie until this
   * process exits. Calling it again returns the same promise: the first
   * call decides about stderr.
   *
   * @param stderr Whether to read its stderr, for an error message.
   * @returns How it ended.
   */
  end(stderr = false): Promise<HelperEnd> {
    this.#cancelLetGo?.();
    return this.#end ??= this.#finish(stderr);
  }

  async #finish(wantStderr: boolean): Promise<HelperEnd> {
    try {
      this.#unpin();
      close(this.#stdin);
      this.#stdin = -1;
      if (!await this.#exit()) {
        this.kill();
        await this.#exit();
      }
      // A poll still on its stdout returns now that it is gone (or at its
      // own timeout, if the helper is stuck in the kernel).
      await Promise.all(this.#polls);
      const status = this.#status;
      const stderr = wantStderr && status !== undefined ? drainText(this.#stderr) : "";
      return { status, stderr };
    } finally {
      this.#unpin();
      if (this.#stdin >= 0) close(this.#stdin);
      for (const fd of [this.#stdout, this.#stderr, this.#pidfd]) close(fd);
      this.#onGone?.();
      this.#gone.resolve();
    }
  }

  /**
   * Waits, up to the timeout, for the helper to exit, and reaps it.
   *
   * @returns Whether it is reaped.
   */
  async #exit(): Promise<boolean> {
    if (this.#reap()) return true;
    await this.#poll(this.#pidfd, POLLIN, this.#timeout);
    return this.#reap();
  }

  /**
   * Reaps the helper if it has exited. One that waitid(2) refuses (ECHILD:
   * reaped already, by someone else) counts as reaped, with exit code -1.
   */
  #reap(): boolean {
    if (this.#status !== undefined) return true;
    try {
      this.#status = reap(this.#pidfd);
    } catch {
      this.#status = { code: -1 };
    }
    return this.#status !== undefined;
  }

  /** poll(2) on one of its fds, on another thread; the fd stays open until it returns. */
  #poll(fd: number, events: number, timeout: number): Promise<number> {
    const poll = waitFor(fd, events, timeout);
    this.#polls.add(poll);
    return poll.finally(() => this.#polls.delete(poll));
  }

  #unpin(): void {
    const prepared = this.#prepared;
    this.#prepared = undefined;
    if (prepared !== undefined) {
      for (const fd of [prepared.userns, prepared.uidMap, prepared.gidMap]) close(fd);
    }
    if (this.#proc < 0) return;
    close(this.#proc);
    this.#proc = -1;
  }

  /** Writes one of the helper's /proc files whole, by name. */
  #write(file: string, text: string): void {
    try {
      writeOnce(file, text, this.#proc);
    } catch (error) {
      throw this.#writeError(error, file, text);
    }
  }

  /** Writes one of the helper's /proc files whole, opened before. */
  #writeTo(fd: number, file: string, text: string): void {
    try {
      writeText(fd, text, file);
    } catch (error) {
      throw this.#writeError(error, file, text);
    }
  }

  /** A failed write's error, with the text, the file's path, and whose ids can be mapped. */
  #writeError(error: unknown, file: string, text: string): unknown {
    if (!(error instanceof MountError)) return error;
    const writing = `(writing ${JSON.stringify(text.trimEnd())})`;
    const names = { target: `/proc/${this.pid}/${file}` };
    const own = error.code === "EPERM" && file !== "setgroups" ? mappableRanges(file) : undefined;
    return error.withHint(own === undefined ? writing : `${writing} ${own}`, names);
  }
}

/**
 * Spawns a helper once the limit allows, maps its new user namespace and
 * opens it; the helper is reaped before this returns.
 *
 * @param mapping The checked mapping.
 * @param signal Kills the helper when aborted, or leaves the line for a
 * spawn.
 * @param timeout Bounds each wait on the helper, in ms.
 * @param limit The bound on helpers alive at once.
 * @returns An fd of the namespace.
 * @throws {MountError} If the helper can't be spawned, exits early, is not
 * ready in time, or the kernel refuses a map.
 * @throws The signal's reason, once aborted.
 */
export async function createUserns(
  mapping: Mapping,
  signal: AbortSignal,
  timeout: number,
  limit: SpawnLimit,
): Promise<OwnedFd> {
  signal.throwIfAborted();
  // No await when a permit is free: distinct gets started together spawn
  // together, before the first of them is awaited.
  const release = limit.tryAcquire() ?? await limit.acquire(signal);
  let helper: Helper;
  try {
    helper = new Helper({ timeout, onGone: release });
  } catch (error) {
    release();
    throw error;
  }
  let userns: OwnedFd | undefined;
  let failure: unknown;
  try {
    await helper.handshake(signal);
    userns = helper.map(mapping);
  } catch (error) {
    failure = error;
    helper.kill();
  }
  // An abort while it exits kills it at once.
  const onAbort = (): void => helper.kill();
  signal.addEventListener("abort", onAbort, { once: true });
  let end: HelperEnd;
  try {
    end = await helper.end(failure !== undefined);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (failure === undefined) return userns!;
  if (failure instanceof HelperExited) throw exitedError(end);
  throw failure;
}

/**
 * The error for a helper that exited before it was ready.
 *
 * @param end How it ended.
 * @returns The error.
 */
export function exitedError(end: HelperEnd): MountError {
  const { status, stderr } = end;
  const how = status === undefined ? "and was not reaped in time" : `(${describeExit(status)})`;
  return new MountError("userns helper", {
    detail: `${UNSHARE.path} exited before entering a new user namespace ${how}${
      stderr ? `: ${stderr}` : ""
    }`,
  });
}
