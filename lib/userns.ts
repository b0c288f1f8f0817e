/**
 * User namespaces with given mappings, for id-mapped mounts: a port of runc's
 * userns `Handles`.
 *
 * A user namespace is made by a short-lived helper, `unshare --user cat`: it
 * echoes one byte once it runs in its new namespace, the parent writes its
 * `uid_map` and `gid_map` and opens `/proc/PID/ns/user`, then closes the
 * helper's stdin so that it exits, and reaps it. The open fd keeps the
 * namespace alive. A helper whose parent dies sees its stdin close and exits
 * too. With `prespawn`, helpers wait ready in a pool, and a new mapping skips
 * the spawn.
 *
 * @module
 */

import { PermissionError } from "../ffi/permission_error.ts";
import { describe } from "./errors.ts";
import type { OwnedFd } from "./fd.ts";
import { checkMapping } from "./check.ts";
import { mappingKey } from "./idmap.ts";
import type { Mapping } from "./mount.ts";
import { createUserns } from "./userns_helper.ts";
import { HelperPool, useSlot } from "./userns_pool.ts";

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
  /**
   * Helpers kept ready in fresh, still unmapped user namespaces (default 0:
   * none). A get for a new mapping takes one, maps it and lets it go, skipping
   * the spawn; the pool refills in the background. Each one is an idle
   * process (`cat`), and four fds in this one, until a get takes it or
   * {@linkcode Handles.release} ends it; it does not keep Deno running, and
   * exits when Deno does.
   */
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

// Set by Handles' static block: its cache, read without a dup by mountFd.
let peek: (handles: Handles, mapping: Mapping) => OwnedFd | undefined;

/**
 * A cache of user namespaces by mapping. Equal mappings (in any order of
 * entries) share one namespace, concurrent requests for one mapping share one
 * helper, and distinct mappings requested together spawn their helpers
 * together.
 *
 * With `prespawn: n`, up to `n` helpers wait ready in fresh user namespaces,
 * and a get for a new mapping costs a few writes instead of a spawn. They
 * cost one idle process each; {@linkcode Handles.release} ends them, and
 * `await using` also waits until they are reaped.
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
 *
 * @example Keep two helpers ready, off the critical path
 * ```ts
 * import { Handles } from "../mod.ts";
 *
 * await using handles = new Handles({ prespawn: 2 });
 * await handles.ready(); // both helpers wait in their namespaces
 * using userns = await handles.get({
 *   uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 * }); // no spawn: a pooled helper is mapped, and a refill starts
 * ```
 */
export class Handles {
  readonly #cache = new Map<string, OwnedFd>();
  readonly #flights = new Map<string, Flight>();
  readonly #running = new Set<Promise<void>>();
  readonly #helperTimeout: number;
  readonly #pool: HelperPool | undefined;
  #generation = 0;

  static {
    peek = (handles, mapping) => handles.#cache.get(mappingKey(mapping));
  }

  /**
   * Makes an empty cache; with `prespawn`, starts filling its pool.
   *
   * @param options The pool size, and the helper timeout.
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
    this.#pool = prespawn > 0 ? new HelperPool(prespawn, helperTimeout) : undefined;
  }

  /** How many user namespaces the cache holds. */
  get size(): number {
    return this.#cache.size;
  }

  /** How many helpers wait ready in the pool now (0 without `prespawn`). */
  get idle(): number {
    return this.#pool?.idle ?? 0;
  }

  /**
   * A user namespace with `mapping`: a new close-on-exec fd of it, which the
   * caller closes. A cached mapping costs a lookup and a dup; a new one, a
   * pooled helper or a spawn.
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
  get(mapping: Mapping, options: GetOptions = {}): Promise<OwnedFd> {
    const { signal } = options;
    try {
      signal?.throwIfAborted();
      const key = mappingKey(checkMapping(mapping, "mapping"));
      const cached = this.#cache.get(key);
      if (cached !== undefined) return Promise.resolve(cached.dup());
      return join(this.#flights.get(key) ?? this.#start(key, mapping), signal).catch(
        (error) => Promise.reject(PermissionError.in(error, "Handles.get")),
      );
    } catch (error) {
      return Promise.reject(PermissionError.in(error, "Handles.get"));
    }
  }

  /**
   * Fills the pool, and settles once every helper in it is ready: for a
   * runtime that starts its pool early. Resolves at once without a pool.
   *
   * @throws {MountError} If a helper can't be spawned or exits early, as
   * {@linkcode Handles.get} would throw.
   */
  async ready(): Promise<void> {
    await this.#pool?.ready();
  }

  /**
   * Closes the cached namespaces and ends the helpers waiting in the pool.
   * Fds returned earlier stay valid, and the cache stays usable (the pool
   * refills on the next new mapping); helpers in flight still serve their
   * waiters. Helpers are reaped in the background: `await using`, or
   * `[Symbol.asyncDispose]()`, waits for them.
   */
  release(): void {
    this.#generation++;
    this.#flights.clear();
    for (const fd of this.#cache.values()) fd.close();
    this.#cache.clear();
    this.#pool?.release();
  }

  /** Releases the cache; for `using`. */
  [Symbol.dispose](): void {
    this.release();
  }

  /**
   * Releases the cache, and settles once every helper it started, pooled or
   * in flight, has been reaped; for `await using`.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.release();
    while (this.#running.size > 0) await Promise.all(this.#running);
    await this.#pool?.settled();
  }

  /**
   * Shows what the cache holds, for `console.log`.
   *
   * @param inspect Deno's inspect function.
   * @param options Its options.
   * @returns Such as `Handles { namespaces: 2, inFlight: 0, idle: 0 }`.
   */
  [Symbol.for("Deno.customInspect")](
    inspect: typeof Deno.inspect,
    options: Deno.InspectOptions,
  ): string {
    const state = { namespaces: this.#cache.size, inFlight: this.#flights.size, idle: this.idle };
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
    flight.done = this.#create(copy, flight.controller.signal).then(
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
        this.#refill(flight);
      },
      (error) => {
        this.#land(key, flight);
        for (const waiter of flight.waiters) waiter.reject(error);
        this.#refill(flight);
      },
    );
    this.#flights.set(key, flight);
    this.#running.add(flight.done);
    flight.done.then(() => this.#running.delete(flight.done));
    return flight;
  }

  /**
   * A namespace from a pooled helper, or else from a new one: also when the
   * pooled one fails, so that an error always comes from a fresh helper, and
   * a refused mapping does not use up the pool.
   */
  async #create(mapping: Mapping, signal: AbortSignal): Promise<OwnedFd> {
    const slot = this.#pool?.take();
    if (slot !== undefined) {
      const userns = await useSlot(slot, mapping, signal);
      if (userns !== undefined) return userns;
    }
    return await createUserns(mapping, signal, this.#helperTimeout);
  }

  /** Refills the pool after a flight, unless released since it started. */
  #refill(flight: Flight): void {
    if (flight.generation === this.#generation) this.#pool?.refill();
  }

  #land(key: string, flight: Flight): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
  }
}

/**
 * The cached namespace of `mapping`, itself, not a dup: for a caller that
 * uses it at once, synchronously, and does not close it. Nothing is spawned.
 *
 * @param handles The cache.
 * @param mapping A checked mapping.
 * @returns The cached fd, or `undefined` if the mapping is not cached.
 *
 * @example Use a cached namespace without a dup
 * ```ts
 * import { Handles, peekUserns } from "./userns.ts";
 * using handles = new Handles();
 * const range = [{ containerID: 0, hostID: 100000, size: 65536 }];
 * const mapping = { uidMappings: range, gidMappings: range };
 * const userns = peekUserns(handles, mapping);
 * console.log(userns === undefined); // true: nothing cached yet
 * ```
 */
export function peekUserns(handles: Handles, mapping: Mapping): OwnedFd | undefined {
  return peek(handles, mapping);
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
