/**
 * User namespaces with given mappings, for id-mapped mounts: a port of runc's
 * userns `Handles`.
 *
 * A user namespace is made by a short-lived helper, `unshare --user cat`
 * (both found by absolute path): it echoes one byte once it runs in its new
 * namespace, the parent writes its `uid_map` and `gid_map` and opens
 * `/proc/PID/ns/user`, then closes the helper's stdin so that it exits, and
 * reaps it. The open fd keeps the namespace alive. A helper whose parent
 * dies sees its stdin close and exits too. With `prespawn`, helpers wait
 * ready in a pool: a new mapping skips the spawn, and does not wait for the
 * helper's exit. At most `maxSpawns` helpers are starting or alive at once.
 *
 * @module
 */

import { PermissionError } from "../../ffi/permission_error.ts";
import { abortable } from "../async.ts";
import { describe } from "../errors.ts";
import type { OwnedFd } from "../fd.ts";
import { checkMapping } from "../id_ranges.ts";
import { knownKey, mappingKey } from "./idmap.ts";
import type { Mapping } from "../mount.ts";
import { UNSHARE } from "./programs.ts";
import { SpawnLimit } from "./spawn_limit.ts";
import { createUserns } from "./helper.ts";
import { HelperPool, useSlot } from "./pool.ts";

/**
 * Options of a {@linkcode Handles}.
 *
 * @example A cache with a short helper timeout
 * ```ts
 * import { Handles, type HandlesOptions } from "@mountfd/mountfd";
 * const options: HandlesOptions = { helperTimeout: 2000 };
 * using handles = new Handles(options);
 * ```
 */
export interface HandlesOptions {
  /**
   * Helpers kept ready in fresh, still unmapped user namespaces (default 0:
   * none; at most `maxSpawns`). A get for a new mapping takes one, maps it
   * and resolves, skipping the spawn; the helper exits in the background,
   * and the pool refills. Each one is an idle process (`cat`), and four fds
   * in this one, until a get takes it or {@linkcode Handles.release} ends
   * it; it does not keep Deno running, and exits when Deno does.
   */
  prespawn?: number;
  /**
   * Bounds every wait on a helper, in ms (default 10000): to enter its
   * namespace, to exit once let go, and to be reaped once killed. A helper
   * that overstays is killed with `SIGKILL`.
   */
  helperTimeout?: number;
  /**
   * How many helpers may be starting or alive at once for new mappings, pool
   * slots included (default 8). Further gets for new mappings wait in line,
   * in order.
   */
  maxSpawns?: number;
}

/**
 * Options of {@linkcode Handles.get}.
 *
 * @example Give up after a second
 * ```ts
 * import { Handles } from "@mountfd/mountfd";
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
  /**
   * Ends this get at once with its reason. The helper is killed (and reaped
   * before the get rejects) only if no other get waits for it.
   */
  signal?: AbortSignal;
}

const DEFAULT_HELPER_TIMEOUT = 10_000;
const DEFAULT_MAX_SPAWNS = 8;

/** The cached namespace of a mapping, without a dup: see {@linkcode peekUserns}. */
const PEEK = Symbol("Handles.peek");

interface Waiter {
  resolve(fd: OwnedFd): void;
  reject(error: unknown): void;
}

/**
 * The making of one mapping's namespace, shared by every get that waits for
 * it. It lives in `#flights` while any of them still wants it: the last one
 * to abort takes it out and aborts it, so no later get joins it.
 */
interface Flight {
  readonly key: string;
  readonly waiters: Set<Waiter>;
  /** Aborted once no get wants it any more: its helper is killed. */
  readonly controller: AbortController;
  readonly generation: number;
  /**
   * Settles once it is over: waiters answered, and its helper reaped, unless
   * it came from the pool (then the pool reaps it in the background).
   */
  settled: Promise<void>;
}

/**
 * A cache of user namespaces by mapping. Equal mappings (in any order of
 * entries) share one namespace, concurrent requests for one mapping share one
 * helper, and distinct mappings requested together spawn their helpers
 * together, up to `maxSpawns` at once; the others wait in line.
 *
 * With `prespawn: n`, up to `n` helpers wait ready in fresh user namespaces,
 * and a get for a new mapping costs a few writes instead of a spawn: it
 * resolves once the namespace is open, and the helper exits and is reaped in
 * the background. Idle helpers cost one process each;
 * {@linkcode Handles.release} ends them, and `await using` (or
 * {@linkcode Handles.settled}) also waits until every helper is reaped.
 *
 * @example Get a user namespace for an id-mapped mount
 * ```ts
 * import { Handles } from "@mountfd/mountfd";
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
 * import { Handles } from "@mountfd/mountfd";
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
  /** What {@linkcode Handles.settled} waits for: every flight until it is over. */
  readonly #unsettled = new Set<Promise<void>>();
  readonly #helperTimeout: number;
  readonly #limit: SpawnLimit;
  readonly #pool: HelperPool | undefined;
  #generation = 0;

  /**
   * Makes an empty cache; with `prespawn`, starts filling its pool.
   *
   * @param options The pool size, the helper timeout and the spawn limit.
   * @throws {TypeError} For a bad option.
   */
  constructor(options?: HandlesOptions) {
    const {
      prespawn = 0,
      helperTimeout = DEFAULT_HELPER_TIMEOUT,
      maxSpawns = DEFAULT_MAX_SPAWNS,
    } = options ?? {};
    if (!Number.isInteger(maxSpawns) || maxSpawns < 1) {
      throw new TypeError(
        `Invalid maxSpawns: expected a positive integer, got ${describe(maxSpawns)}`,
      );
    }
    if (!Number.isInteger(prespawn) || prespawn < 0) {
      throw new TypeError(
        `Invalid prespawn: expected a non-negative integer, got ${describe(prespawn)}`,
      );
    }
    if (prespawn > maxSpawns) {
      throw new TypeError(
        `Invalid prespawn: expected at most maxSpawns (${maxSpawns}), got ${prespawn}`,
      );
    }
    if (!(helperTimeout > 0)) {
      throw new TypeError(
        `Invalid helperTimeout: expected a positive number of ms, got ${describe(helperTimeout)}`,
      );
    }
    this.#helperTimeout = helperTimeout;
    this.#limit = new SpawnLimit(maxSpawns, () => this.#pool?.permitFreed());
    this.#pool = prespawn > 0 ? new HelperPool(prespawn, helperTimeout, this.#limit) : undefined;
  }

  /** How many user namespaces the cache holds. */
  get size(): number {
    return this.#cache.size;
  }

  /** How many helpers wait idle in the pool now (0 without `prespawn`). */
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
   * `--allow-ffi`, naming the flag, before anything runs.
   * @throws The signal's reason, once aborted.
   */
  get(mapping: Mapping, options?: GetOptions): Promise<OwnedFd> {
    const signal = options?.signal;
    try {
      signal?.throwIfAborted();
      // A mapping seen before and not changed since was checked then.
      const key = knownKey(mapping) ?? mappingKey(checkMapping(mapping, "mapping"));
      const cached = this.#cache.get(key);
      if (cached !== undefined) return Promise.resolve(cached.dup());
      let flight = this.#flights.get(key);
      if (flight === undefined) {
        UNSHARE.checkPermission();
        // An idle pooled helper is mapped in this turn: no flight, no wait.
        const pooled = this.#pool?.mapIdle(mapping) ?? "none";
        if (typeof pooled === "object") return Promise.resolve(this.#landPooled(key, pooled));
        // After a pooled helper failed, a fresh one: its error is the one to report.
        flight = this.#start(key, mapping, pooled === "none");
      }
      return this.#join(flight, signal).catch(
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
   * Settles once no helper of this cache is starting, being mapped, or on
   * its way out: each is reaped, or idle in the pool. Pooled gets resolve
   * before their helper exits; this waits for those exits.
   */
  async settled(): Promise<void> {
    while (this.#unsettled.size > 0) await Promise.all(this.#unsettled);
    await this.#pool?.settled();
  }

  /**
   * Closes the cached namespaces and ends the helpers waiting in the pool,
   * or on their way out of it. Fds returned earlier stay valid, and the
   * cache stays usable (the pool refills on the next new mapping); helpers
   * in flight still serve their waiters. Helpers are reaped in the
   * background: `await using`, or {@linkcode Handles.settled}, waits for
   * them.
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
    await this.settled();
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

  /**
   * The cached namespace of a checked mapping, itself: for
   * {@linkcode peekUserns}.
   *
   * @param mapping A checked mapping.
   * @returns The cached fd, or `undefined`.
   */
  [PEEK](mapping: Mapping): OwnedFd | undefined {
    return this.#cache.get(mappingKey(mapping));
  }

  #start(key: string, mapping: Mapping, fromPool: boolean): Flight {
    // Copy the ranges: the caller may change its arrays while we wait.
    const copy: Mapping = {
      uidMappings: mapping.uidMappings.map((m) => ({ ...m })),
      gidMappings: mapping.gidMappings.map((m) => ({ ...m })),
    };
    const flight: Flight = {
      key,
      waiters: new Set(),
      controller: new AbortController(),
      generation: this.#generation,
      settled: Promise.resolve(),
    };
    const settled = this.#create(copy, flight.controller.signal, fromPool).then(
      (base) => this.#land(flight, base),
      (error) => {
        this.#leave(flight);
        for (const waiter of flight.waiters) waiter.reject(error);
      },
    ).finally(() => {
      // Refill the pool, off this get's critical path, unless released since.
      if (flight.generation === this.#generation) this.#pool?.refill();
    });
    flight.settled = settled;
    this.#flights.set(key, flight);
    this.#unsettled.add(settled);
    settled.then(() => this.#unsettled.delete(settled));
    return flight;
  }

  /**
   * A namespace from a pooled helper (unless `fromPool` is false), or else
   * from a new one: also when the pooled one fails, so that an error always
   * comes from a fresh helper, and a refused mapping does not use up the
   * pool.
   */
  async #create(mapping: Mapping, signal: AbortSignal, fromPool: boolean): Promise<OwnedFd> {
    const slot = fromPool ? this.#pool?.take() : undefined;
    if (slot !== undefined) {
      const userns = await useSlot(slot, mapping, signal);
      if (userns !== undefined) return userns;
    }
    return await createUserns(mapping, signal, this.#helperTimeout, this.#limit);
  }

  /** Answers a flight's waiters with dups of its namespace, and caches it. */
  #land(flight: Flight, base: OwnedFd): void {
    this.#leave(flight);
    // Abandoned by every get: nobody wants it.
    if (flight.controller.signal.aborted) return base.close();
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
    if (flight.generation === this.#generation && !this.#cache.has(flight.key)) {
      this.#cache.set(flight.key, base);
    } else {
      base.close();
    }
  }

  /** Caches a namespace from the pool's fast path; the caller's dup of it. */
  #landPooled(key: string, base: OwnedFd): OwnedFd {
    this.#cache.set(key, base);
    this.#pool!.refill();
    return base.dup();
  }

  /** Takes a flight out of the map, so that no later get joins it. */
  #leave(flight: Flight): void {
    if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
  }

  /**
   * Waits on a flight. An abort ends this wait at once; the last waiter to
   * abort also takes the flight out, aborts it, and answers once its helper
   * is reaped.
   */
  #join(flight: Flight, signal: AbortSignal | undefined): Promise<OwnedFd> {
    let waiter: Waiter;
    return abortable<OwnedFd>(signal, (settle) => {
      waiter = settle;
      flight.waiters.add(waiter);
    }, ({ reject }) => {
      if (!flight.waiters.delete(waiter)) return;
      if (flight.waiters.size > 0) return void reject(signal!.reason);
      this.#leave(flight);
      flight.controller.abort(signal!.reason);
      flight.settled.then(() => reject(signal!.reason));
    });
  }
}

/**
 * The cached namespace of `mapping`, itself, not a dup: for a caller that
 * uses it at once, synchronously, and does not close it. Nothing is spawned.
 *
 * @param handles The cache.
 * @param mapping A checked mapping.
 * @returns The cached fd, or `undefined` if the mapping is not cached.
 */
export function peekUserns(handles: Handles, mapping: Mapping): OwnedFd | undefined {
  return handles[PEEK](mapping);
}
