/**
 * A bound on the helper processes a `Handles` has starting or alive
 * at once: a counting semaphore whose waiters are served in order.
 *
 * @module
 */

import { abortable } from "../async.ts";

/** Gives a permit back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  resolve(release: Release): void;
}

/**
 * Up to `max` permits. A helper holds one from before its spawn until it has
 * been reaped. Waiters are served first come, first served; whoever only
 * tries ({@linkcode SpawnLimit.tryAcquire}, the pool's refills) never takes a
 * permit a waiter is in line for.
 */
export class SpawnLimit {
  /** How many permits there are. */
  readonly max: number;
  #used = 0;
  readonly #waiters = new Set<Waiter>();
  readonly #onFree: (() => void) | undefined;

  /**
   * Makes the limit.
   *
   * @param max How many permits there are.
   * @param onFree Called when a permit is given back and nobody waits for it.
   */
  constructor(max: number, onFree?: () => void) {
    this.max = max;
    this.#onFree = onFree;
  }

  /** How many permits are held now. */
  get used(): number {
    return this.#used;
  }

  /** How many callers wait in line. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * A permit if one is free and nobody waits for one.
   *
   * @returns Its release, or `undefined`.
   */
  tryAcquire(): Release | undefined {
    if (this.#used >= this.max || this.#waiters.size > 0) return undefined;
    this.#used++;
    return this.#release();
  }

  /**
   * A permit, once one is free and every earlier caller has had one.
   *
   * @param signal Leaves the line when aborted.
   * @returns Its release.
   * @throws The signal's reason, once aborted.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const release = this.tryAcquire();
    if (release !== undefined) return Promise.resolve(release);
    let waiter: Waiter;
    return abortable<Release>(signal, (settle) => {
      waiter = settle;
      this.#waiters.add(waiter);
    }, ({ reject }) => {
      if (this.#waiters.delete(waiter)) reject(signal!.reason);
    });
  }

  #release(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const [next] = this.#waiters;
      if (next !== undefined) {
        // The permit passes on, held all along.
        this.#waiters.delete(next);
        next.resolve(this.#release());
        return;
      }
      this.#used--;
      this.#onFree?.();
    };
  }
}
