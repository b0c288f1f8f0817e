/**
 * A pool of helpers that wait, idle, in fresh and still unmapped user
 * namespaces: a new mapping then costs three writes and an open instead of a
 * spawn.
 *
 * Each slot costs one idle process (`cat`) and four fds (its stdin, stdout
 * and stderr pipes, and its pinned `/proc/PID` directory). An idle helper does not
 * keep Deno running, has no read pending on it, and exits by itself when
 * Deno does (its stdin closes).
 *
 * @module
 */

import type { OwnedFd } from "./fd.ts";
import type { Mapping } from "./mount.ts";
import { exitedError, Helper, HelperExited } from "./userns_helper.ts";

/** One pooled helper, from spawn until a get takes it or the pool ends it. */
export interface Slot {
  /** The helper. */
  readonly helper: Helper;
  /** Ends its wait to become ready; the helper is then killed and reaped. */
  readonly controller: AbortController;
  /** Settles once it is ready; rejects, once it is reaped, if it failed. */
  ready: Promise<void>;
  /** Whether it echoed from its namespace. */
  isReady: boolean;
  /** Whether it failed to become ready. */
  failed: boolean;
  /** Whether the pool let it go (release) while it was still in the pool. */
  discarded: boolean;
}

/**
 * Up to `capacity` helpers, ready or on their way.
 *
 * @example Take a helper for a new mapping
 * ```ts
 * import { HelperPool, useSlot } from "./userns_pool.ts";
 * const range = [{ containerID: 0, hostID: 100000, size: 65536 }];
 * const mapping = { uidMappings: range, gidMappings: range };
 * const pool = new HelperPool(2, 10_000);
 * await pool.ready();
 * const slot = pool.take();
 * const userns = slot && await useSlot(slot, mapping, new AbortController().signal);
 * pool.refill();
 * pool.release();
 * await pool.settled();
 * ```
 */
export class HelperPool {
  /** How many helpers it keeps. */
  readonly capacity: number;
  readonly #timeout: number;
  #slots: Slot[] = [];
  readonly #helpers = new Set<Helper>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #error: unknown;

  /**
   * Makes a pool and starts filling it.
   *
   * @param capacity How many helpers it keeps.
   * @param timeout How long a helper may take to become ready, in ms.
   */
  constructor(capacity: number, timeout: number) {
    this.capacity = capacity;
    this.#timeout = timeout;
    this.fill();
  }

  /** How many helpers are ready in the pool now. */
  get idle(): number {
    let n = 0;
    for (const slot of this.#slots) if (slot.isReady && !slot.helper.exited) n++;
    return n;
  }

  /**
   * Spawns helpers until the pool holds `capacity`. A spawn that throws stops
   * the fill, and {@linkcode HelperPool.ready} reports it.
   */
  fill(): void {
    this.#error = undefined;
    while (this.#slots.length < this.capacity) {
      let helper: Helper;
      try {
        helper = new Helper(true);
      } catch (error) {
        this.#error = error;
        return;
      }
      this.#slots.push(this.#start(helper));
    }
  }

  /**
   * Fills the pool and waits until every helper in it is ready.
   *
   * @throws The error of a helper that could not be spawned or become ready.
   */
  async ready(): Promise<void> {
    this.fill();
    if (this.#error !== undefined) throw this.#error;
    await Promise.all(this.#slots.map((slot) => slot.ready));
  }

  /**
   * Takes a helper out of the pool: a ready one if there is one, else one on
   * its way. The caller calls {@linkcode HelperPool.refill} once done.
   *
   * @returns The slot, now the caller's, or `undefined` if the pool is empty.
   */
  take(): Slot | undefined {
    let index = this.#slots.findIndex((slot) => slot.isReady && !slot.helper.exited);
    if (index < 0) index = this.#slots.findIndex((slot) => !slot.isReady && !slot.failed);
    if (index < 0) return undefined;
    const [slot] = this.#slots.splice(index, 1);
    slot.helper.ref();
    return slot;
  }

  /**
   * Schedules a fill if the pool is short, on a timer: a spawn blocks the
   * thread for a while, so it runs after the caller's own continuation, not
   * on its critical path. The timer does not keep Deno running.
   */
  refill(): void {
    if (this.#timer !== undefined || this.#slots.length >= this.capacity) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.fill();
    }, 0);
    Deno.unrefTimer(this.#timer);
  }

  /**
   * Ends every helper still in the pool: a ready one is let go, one on its way
   * is killed. Both are reaped in the background ({@linkcode HelperPool.settled}).
   * Helpers already taken are their takers'. The pool refills on the next take.
   */
  release(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const slots = this.#slots;
    this.#slots = [];
    for (const slot of slots) {
      slot.discarded = true;
      if (slot.isReady) slot.helper.end();
      else slot.controller.abort();
    }
  }

  /** Settles once every helper this pool spawned has been reaped. */
  async settled(): Promise<void> {
    while (this.#helpers.size > 0) {
      await Promise.all([...this.#helpers].map((helper) => helper.done));
    }
  }

  #start(helper: Helper): Slot {
    const slot: Slot = {
      helper,
      controller: new AbortController(),
      ready: Promise.resolve(),
      isReady: false,
      failed: false,
      discarded: false,
    };
    slot.ready = helper.ready(slot.controller.signal, this.#timeout).then(
      () => {
        slot.isReady = true;
        // Released in the meantime: its abort came too late to stop the wait.
        if (slot.discarded) helper.end();
      },
      async (error) => {
        slot.failed = true;
        this.#remove(slot);
        helper.kill();
        const { status, stderr } = await helper.end(true);
        throw error instanceof HelperExited ? exitedError(status, stderr) : error;
      },
    );
    // Takers and ready() see a failure; nobody else needs to.
    slot.ready.catch(() => {});
    this.#helpers.add(helper);
    helper.done.then(() => this.#helpers.delete(helper));
    helper.status.then(() => this.#lost(slot), () => {});
    return slot;
  }

  /**
   * A pooled helper exited. If it was waiting ready in the pool, reap it and
   * replace it. One that failed to start is its start's to end, and is not
   * retried until the next get.
   */
  #lost(slot: Slot): void {
    if (!slot.isReady || !this.#remove(slot)) return;
    slot.helper.end();
    this.refill();
  }

  #remove(slot: Slot): boolean {
    const index = this.#slots.indexOf(slot);
    if (index < 0) return false;
    this.#slots.splice(index, 1);
    return true;
  }
}

/**
 * Maps a taken helper's namespace and opens it, then lets the helper go and
 * reaps it.
 *
 * @param slot A slot from {@linkcode HelperPool.take}.
 * @param mapping The checked mapping.
 * @param signal Ends the wait for a helper still on its way, which is then
 * killed and reaped.
 * @returns The namespace, or `undefined` if the helper failed to start,
 * died while idle, or could not be mapped: the caller spawns one instead, and
 * reports its error, if any.
 * @throws The signal's reason, once aborted.
 *
 * @example Serve a get from the pool, or spawn
 * ```ts
 * import { createUserns } from "./userns_helper.ts";
 * import { HelperPool, useSlot } from "./userns_pool.ts";
 * const range = [{ containerID: 0, hostID: 100000, size: 65536 }];
 * const mapping = { uidMappings: range, gidMappings: range };
 * const signal = AbortSignal.timeout(10_000);
 * const pool = new HelperPool(1, 10_000);
 * const slot = pool.take();
 * const userns = (slot && await useSlot(slot, mapping, signal)) ??
 *   await createUserns(mapping, signal, 10_000);
 * ```
 */
export async function useSlot(
  slot: Slot,
  mapping: Mapping,
  signal: AbortSignal,
): Promise<OwnedFd | undefined> {
  const { helper } = slot;
  if (!slot.isReady) {
    try {
      await untilAborted(slot.ready, signal);
    } catch {
      slot.controller.abort(signal.reason);
      await helper.end();
      signal.throwIfAborted();
      return undefined;
    }
  }
  let userns: OwnedFd;
  try {
    userns = helper.map(mapping);
  } catch {
    // Dead or dying since it was last seen: ESRCH once reaped (its pid was
    // never reused), EACCES from a zombie's /proc for a rootless caller. Or
    // the kernel refused the map: a fresh helper will say so again.
    helper.kill();
    await helper.end();
    return undefined;
  }
  await helper.end();
  return userns;
}

/** `promise`, or the signal's reason if it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
