/**
 * User namespaces with given mappings, for id-mapped mounts: a port of runc's
 * userns `Handles`.
 *
 * A user namespace is made by a short-lived helper, `unshare --user cat`: it
 * echoes one byte once it runs in its new namespace, the parent writes its
 * `uid_map` and `gid_map` and opens `/proc/PID/ns/user`, then closes the
 * helper's stdin so that it exits, and reaps it. The open fd keeps the
 * namespace alive. A helper whose parent dies sees its stdin close and exits
 * too.
 *
 * @module
 */

import { O_RDONLY } from "../ffi/constants.ts";
import { errnoValue } from "../ffi/errno.ts";
import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { spawn } from "../ffi/process.ts";
import { open, writeOnce } from "../ffi/syscalls.ts";
import { describe } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { checkMapping, formatIDMaps, type Mapping, mappingKey } from "./idmap.ts";

/**
 * Options of a {@linkcode Handles}.
 *
 * @example A cache with a short helper timeout
 * ```ts
 * import { Handles, type HandlesOptions } from "../mod.ts";
 * const options: HandlesOptions = { helperTimeout: 2000 };
 * using handles = new Handles(options);
 * ```
 */
export interface HandlesOptions {
  /** Helpers kept ready in fresh user namespaces (default 0: none). */
  prespawn?: number;
  /** How long a helper may take to enter its namespace, in ms (default 10000). */
  helperTimeout?: number;
}

/**
 * Options of {@linkcode Handles.get}.
 *
 * @example Give up after a second
 * ```ts
 * import { Handles } from "../mod.ts";
 *
 * using handles = new Handles();
 * const range = [{ containerID: 0, hostID: 100000, size: 65536 }];
 * using fd = await handles.get(
 *   { uidMappings: range, gidMappings: range },
 *   { signal: AbortSignal.timeout(1000) },
 * );
 * ```
 */
export interface GetOptions {
  /** Aborts the wait; a helper nobody else waits for is killed and reaped. */
  signal?: AbortSignal;
}

/** The program the helper runs in its new user namespace. */
const HELPER = { command: "unshare", args: ["--user", "--", "cat"] } as const;
const PING = new Uint8Array([0x2e]);
const DEFAULT_HELPER_TIMEOUT = 10_000;

interface Waiter {
  resolve(fd: OwnedFd): void;
  reject(error: unknown): void;
}

interface Flight {
  readonly waiters: Set<Waiter>;
  readonly controller: AbortController;
  readonly generation: number;
  done: Promise<void>;
}

/**
 * A cache of user namespaces by mapping. Equal mappings (in any order of
 * entries) share one namespace, and concurrent requests for one mapping share
 * one helper.
 *
 * @example Get a user namespace for an id-mapped mount
 * ```ts
 * import { Handles } from "../mod.ts";
 *
 * using handles = new Handles();
 * const mapping = {
 *   uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 * };
 * using first = await handles.get(mapping);
 * using second = await handles.get(mapping); // cached: no new helper
 * console.log(first.fd !== second.fd); // true: each get is its own dup
 * ```
 */
export class Handles {
  readonly #cache = new Map<string, OwnedFd>();
  readonly #flights = new Map<string, Flight>();
  readonly #helperTimeout: number;
  #generation = 0;

  /**
   * Makes an empty cache.
   *
   * @param options The helper timeout, and the pool size.
   * @throws {TypeError} For a bad option.
   */
  constructor(options: HandlesOptions = {}) {
    const { prespawn = 0, helperTimeout = DEFAULT_HELPER_TIMEOUT } = options;
    if (!Number.isInteger(prespawn) || prespawn < 0) {
      throw new TypeError(
        `Invalid prespawn: expected a non-negative integer, got ${describe(prespawn)}`,
      );
    }
    if (!(helperTimeout > 0)) {
      throw new TypeError(
        `Invalid helperTimeout: expected a positive number of ms, got ${describe(helperTimeout)}`,
      );
    }
    this.#helperTimeout = helperTimeout;
  }

  /** How many user namespaces the cache holds. */
  get size(): number {
    return this.#cache.size;
  }

  /**
   * A user namespace with `mapping`: a new close-on-exec fd of it, which the
   * caller closes.
   *
   * @param mapping The uid and gid mappings.
   * @param options An abort signal.
   * @returns A new fd of the namespace.
   * @throws {TypeError} For a bad mapping, before any helper runs.
   * @throws {MountError} If the helper can't be spawned (`unshare` missing:
   * code `ENOENT`), exits early, is not ready in time, or the kernel refuses
   * the map.
   * @throws {Deno.errors.NotCapable} Without `--allow-run=unshare` or
   * `--allow-ffi`, naming the flag.
   * @throws The signal's reason, once aborted.
   */
  async get(mapping: Mapping, options: GetOptions = {}): Promise<OwnedFd> {
    const { signal } = options;
    signal?.throwIfAborted();
    const key = mappingKey(checkMapping(mapping, "mapping"));
    try {
      const cached = this.#cache.get(key);
      if (cached !== undefined) return cached.dup();
      const flight = this.#flights.get(key) ?? this.#start(key, mapping);
      return await join(flight, signal);
    } catch (error) {
      throw PermissionError.in(error, "Handles.get");
    }
  }

  /**
   * Closes the cached namespaces. Fds returned earlier stay valid, and the
   * cache stays usable; helpers in flight still serve their waiters.
   */
  release(): void {
    this.#generation++;
    this.#flights.clear();
    for (const fd of this.#cache.values()) fd.close();
    this.#cache.clear();
  }

  /** Releases the cache; for `using`. */
  [Symbol.dispose](): void {
    this.release();
  }

  /**
   * Shows what the cache holds, for `console.log`.
   *
   * @param inspect Deno's inspect function.
   * @param options Its options.
   * @returns Such as `Handles { namespaces: 2, inFlight: 0 }`.
   */
  [Symbol.for("Deno.customInspect")](
    inspect: typeof Deno.inspect,
    options: Deno.InspectOptions,
  ): string {
    const state = { namespaces: this.#cache.size, inFlight: this.#flights.size };
    return `Handles ${inspect(state, options)}`;
  }

  #start(key: string, mapping: Mapping): Flight {
    // Copy the ranges: the caller may change its arrays while we wait.
    const copy: Mapping = {
      uidMappings: mapping.uidMappings.map((m) => ({ ...m })),
      gidMappings: mapping.gidMappings.map((m) => ({ ...m })),
    };
    const flight: Flight = {
      waiters: new Set(),
      controller: new AbortController(),
      generation: this.#generation,
      done: Promise.resolve(),
    };
    flight.done = createUserns(copy, flight.controller.signal, this.#helperTimeout)
      .then(
        (base) => {
          this.#land(key, flight);
          for (const waiter of flight.waiters) {
            let fd: OwnedFd;
            try {
              fd = base.dup();
            } catch (error) {
              waiter.reject(error);
              continue;
            }
            waiter.resolve(fd);
          }
          if (flight.generation === this.#generation) this.#cache.set(key, base);
          else base.close();
        },
        (error) => {
          this.#land(key, flight);
          for (const waiter of flight.waiters) waiter.reject(error);
        },
      );
    this.#flights.set(key, flight);
    return flight;
  }

  #land(key: string, flight: Flight): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
  }
}

/** Waits on a flight; an abort leaves it, and ends it if it was the last. */
function join(flight: Flight, signal: AbortSignal | undefined): Promise<OwnedFd> {
  return new Promise((resolve, reject) => {
    if (signal === undefined) {
      flight.waiters.add({ resolve, reject });
      return;
    }
    const onAbort = () => {
      if (!flight.waiters.delete(waiter)) return;
      if (flight.waiters.size > 0) return reject(signal.reason);
      // The last waiter: end the helper, and answer once it is reaped.
      flight.controller.abort(signal.reason);
      flight.done.then(() => reject(signal.reason));
    };
    const waiter: Waiter = {
      resolve(fd): void {
        signal.removeEventListener("abort", onAbort);
        resolve(fd);
      },
      reject(error): void {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    };
    flight.waiters.add(waiter);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Spawns a helper, maps its new user namespace and opens it.
 *
 * @param mapping The checked mapping.
 * @param signal Kills the helper when aborted.
 * @param timeout How long the helper may take to enter its namespace, in ms.
 * @returns An fd of the namespace.
 */
async function createUserns(
  mapping: Mapping,
  signal: AbortSignal,
  timeout: number,
): Promise<OwnedFd> {
  signal.throwIfAborted();
  const child = spawn(HELPER.command, {
    args: [...HELPER.args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }, "which makes user namespaces for id mappings");
  const stderr = new Response(child.stderr).text();
  const stdin = child.stdin.getWriter();
  const stdout = child.stdout.getReader();
  let userns: OwnedFd | undefined;
  let failure: unknown;
  try {
    await waitReady(stdin, stdout, signal, timeout);
    const pid = child.pid;
    writeMap(`/proc/${pid}/setgroups`, "deny\n");
    writeMap(`/proc/${pid}/uid_map`, formatIDMaps(mapping.uidMappings));
    writeMap(`/proc/${pid}/gid_map`, formatIDMaps(mapping.gidMappings));
    userns = new OwnedFd(open(`/proc/${pid}/ns/user`, O_RDONLY));
  } catch (error) {
    failure = error;
    try {
      child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
  }
  // Let the helper go: EOF on its stdin ends it. Then reap it.
  await stdin.close().catch(() => {});
  while (!(await stdout.read().catch(() => ({ done: true }))).done) {
    // Drain whatever it echoed.
  }
  const status = await child.status;
  const errors = (await stderr).trim();
  if (failure === undefined) return userns!;
  if (failure instanceof HelperExited) {
    throw new MountError("userns helper", {
      detail: `${HELPER.command} exited before entering a new user namespace (${
        status.signal ?? `exit code ${status.code}`
      })${errors ? `: ${errors}` : ""}`,
    });
  }
  throw failure;
}

class HelperExited extends Error {}

/** Pings the helper and waits for the echo, which it sends from its namespace. */
async function waitReady(
  stdin: WritableStreamDefaultWriter<Uint8Array>,
  stdout: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal,
  timeout: number,
): Promise<void> {
  const echo = (async () => {
    await stdin.write(PING).catch(() => {});
    const { done } = await stdout.read();
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
}

function writeMap(path: string, text: string): void {
  try {
    writeOnce(path, text);
  } catch (error) {
    if (!(error instanceof MountError)) throw error;
    throw new MountError(error.op, {
      errno: error.errno,
      target: path,
      hint: `(writing ${JSON.stringify(text.trimEnd())})`,
      cause: error,
    });
  }
}
