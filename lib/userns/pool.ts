/**
 * A pool of helpers that wait, idle, in fresh and still unmapped user
 * namespaces: a new mapping then costs three writes and an open instead of a
 * spawn, and the helper's exit and reaping happen after the get has its fd.
 *
 * Each slot costs one idle process (`cat`) and eight fds (its stdin, stdout
 * and stderr pipes, its pidfd, its pinned `/proc/PID` directory, and its
 * namespace, `uid_map` and `gid_map`, opened while it waits). An idle helper
 * does not keep Deno running, has no wait pending on it, and exits by itself
 * when Deno does (its stdin closes). Each pooled helper holds a spawn permit
 * of the {@linkcode SpawnLimit} until it is reaped; the pool only takes
 * permits nobody waits for.
 *
 * @module
 */

import { afterThisTurn, orAbort } from "../async.ts";
import type { OwnedFd } from "../fd.ts";
import type { Mapping } from "../mount.ts";
import type { SpawnLimit } from "./spawn_limit.ts";
import { exitedError, Helper, HelperExited } from "./helper.ts";

/** One pooled helper, from its spawn until a get takes it or the pool ends it. */
export interface Slot {
  /** The helper. */
  readonly helper: Helper;
  /** Ends its handshake; the helper is then killed and reaped. */
  readonly controller: AbortController;
  /** Its handshake: rejects, once the helper is reaped, if it failed. */
  handshake: Promise<void>;
}

/**
 * Up to `capacity` helpers, idle in their namespaces or on their way.
 *
 * The pool fills at once, and refills after each get that took from it, on
 * a timer, and when a spawn permit it lacked is given back. It rests
 * (does not refill) after {@linkcode HelperPool.release}, or after a helper
 * failed to start, until the next take or {@linkcode HelperPool.ready}: a
 * helper that keeps dying right after its start is not respawned in a loop.
 * Nothing ends a helper while it is in the pool (the pool takes it out
 * first), so every one there that echoed counts as idle. One that died since
 * is found by the get that takes it: it still serves it, through the
 * namespace and maps it opened while it waited, or the get spawns afresh.
 */
export class HelperPool {
  /** How many helpers it keeps. */
  readonly capacity: number;
  readonly #timeout: number;
  readonly #limit: SpawnLimit;
  #slots: Slot[] = [];
  readonly #helpers = new Set<Helper>();
  /** Cancels the scheduled fill, if one is. */
  #cancelFill: (() => void) | undefined;
  #error: unknown;
  #resting = false;
  #starved = false;

  /**
   * Makes a pool and starts filling it.
   *
   * @param capacity How many helpers it keeps.
   * @param timeout Bounds each wait on a helper, in ms.
   * @param limit The bound on helpers alive at once, shared with the gets
   * that spawn their own.
   */
  constructor(capacity: number, timeout: number, limit: SpawnLimit) {
    this.capacity = capacity;
    this.#timeout = timeout;
    this.#limit = limit;
    this.#fill();
  }

  /** How many helpers wait idle in their namespaces now. */
  get idle(): number {
    let n = 0;
    for (const { helper } of this.#slots) if (helper.entered) n++;
    return n;
  }

  /**
   * Fills the pool, waiting in line for spawn permits if need be, and
   * settles once every helper in it is idle in its namespace.
   *
   * @throws The error of a helper that could not be spawned or start.
   */
  async ready(): Promise<void> {
    this.#wake();
    this.#fill();
    while (this.#slots.length < this.capacity && this.#error === undefined) {
      const release = await this.#limit.acquire();
      if (this.#resting) {
        release();
        break;
      }
      this.#spawn(release);
    }
    if (this.#error !== undefined) throw this.#error;
    await Promise.all(this.#slots.map((slot) => slot.handshake));
  }

  /**
   * Takes a helper out of the pool: an idle one if there is one, else one on
   * its way. The caller calls {@linkcode HelperPool.refill} once done.
   *
   * @returns The slot, now the caller's, or `undefined` if the pool is empty.
   */
  take(): Slot | undefined {
    this.#wake();
    let index = this.#slots.findIndex(({ helper }) => helper.entered);
    if (index < 0) index = this.#slots.findIndex(({ helper }) => !helper.entered);
    if (index < 0) return undefined;
    const [slot] = this.#slots.splice(index, 1);
    return slot;
  }

  /**
   * A get's fast path: maps an idle helper at once, in the caller's turn,
   * and lets it go. The caller calls {@linkcode HelperPool.refill} once
   * done.
   *
   * @param mapping The checked mapping, used before this returns.
   * @returns The namespace; `"none"` if no helper is idle; `"failed"` if the
   * one taken could not be mapped (it is ended, in the background): then the
   * caller spawns afresh, and reports the error, if any.
   */
  mapIdle(mapping: Mapping): OwnedFd | "none" | "failed" {
    const index = this.#slots.findIndex(({ helper }) => helper.entered);
    if (index < 0) return "none";
    this.#wake();
    const { helper } = this.#slots.splice(index, 1)[0];
    const userns = mapTaken(helper, mapping);
    if (userns !== undefined) return userns;
    helper.end();
    return "failed";
  }

  /**
   * Schedules a fill if the pool is short and not resting, on a timer: a
   * spawn blocks the thread for a while, so it runs after the caller's own
   * continuation, not on its critical path.
   */
  refill(): void {
    if (this.#cancelFill !== undefined || this.#resting) return;
    if (this.#slots.length >= this.capacity) return;
    this.#cancelFill = afterThisTurn(() => {
      this.#cancelFill = undefined;
      this.#fill();
    });
  }

  /**
   * A spawn permit was given back and nobody waited for it: refills if the
   * pool was short of permits.
   */
  permitFreed(): void {
    if (this.#starved) this.refill();
  }

  /**
   * Ends every helper still in the pool (an idle one is let go, one on its
   * way is killed) and kills taken ones that are on their way out, or let
   * go and not yet ended: a helper stopped (`SIGSTOP`) after its get is
   * ended too, not waited for. All are reaped in the background
   * ({@linkcode HelperPool.settled}). A taken helper that still serves a get
   * is left to it. The pool rests until the next take.
   */
  release(): void {
    this.#cancelFill?.();
    this.#cancelFill = undefined;
    this.#resting = true;
    const slots = this.#slots;
    this.#slots = [];
    for (const slot of slots) {
      slot.controller.abort();
      if (slot.helper.entered) slot.helper.end();
    }
    for (const helper of this.#helpers) {
      if (!helper.ending) continue;
      helper.end();
      helper.kill();
    }
  }

  /**
   * Settles once no helper of this pool is on its way in or out: all are
   * idle in the pool, or reaped.
   */
  async settled(): Promise<void> {
    for (;;) {
      const busy: Promise<unknown>[] = [];
      for (const helper of this.#helpers) {
        const slot = this.#slots.find((slot) => slot.helper === helper);
        if (slot === undefined) busy.push(helper.gone);
        else if (!helper.entered) busy.push(slot.handshake.catch(() => {}));
      }
      if (busy.length === 0) return;
      await Promise.all(busy);
    }
  }

  /** Resumes filling: on a take, or ready(). */
  #wake(): void {
    this.#resting = false;
    this.#error = undefined;
  }

  /** Spawns helpers while the pool is short and permits are free. */
  #fill(): void {
    this.#starved = false;
    while (!this.#resting && this.#slots.length < this.capacity) {
      const release = this.#limit.tryAcquire();
      if (release === undefined) {
        this.#starved = true;
        return;
      }
      this.#spawn(release);
    }
  }

  #spawn(release: () => void): void {
    let helper: Helper;
    try {
      helper = new Helper({ timeout: this.#timeout, onGone: release });
    } catch (error) {
      release();
      this.#error = error;
      this.#resting = true;
      return;
    }
    const slot: Slot = { helper, controller: new AbortController(), handshake: Promise.resolve() };
    slot.handshake = helper.handshake(slot.controller.signal).then(
      () => {
        // Released meanwhile: its abort came too late to stop the handshake.
        if (slot.controller.signal.aborted) return void helper.end();
        // What a map needs but the mapping, done while it waits; a failure
        // is the map's to find again (and the get's to spawn afresh).
        try {
          helper.prepare();
        } catch {
          // Gone, or its /proc refused: useSlot() sees it.
        }
      },
      async (error) => {
        // A failed start is not retried until the next take.
        if (this.#remove(slot)) this.#resting = true;
        helper.kill();
        const end = await helper.end(true);
        throw error instanceof HelperExited ? exitedError(end) : error;
      },
    );
    // Takers and ready() see a failure; nobody else needs to.
    slot.handshake.catch(() => {});
    this.#slots.push(slot);
    this.#helpers.add(helper);
    helper.gone.then(() => this.#helpers.delete(helper));
  }

  #remove(slot: Slot): boolean {
    const index = this.#slots.indexOf(slot);
    if (index < 0) return false;
    this.#slots.splice(index, 1);
    return true;
  }
}

/**
 * Maps a taken helper's namespace and opens it, then lets the helper go, on
 * a timer: its exit and reaping go on in the background, which
 * {@linkcode HelperPool.settled} waits for.
 *
 * @param slot A slot from {@linkcode HelperPool.take}.
 * @param mapping The checked mapping.
 * @param signal Ends the wait for a helper still on its way, which is then
 * killed and reaped.
 * @returns The namespace, or `undefined` if the helper failed to start,
 * died while idle, or could not be mapped: the caller spawns one instead, and
 * reports its error, if any.
 * @throws The signal's reason, once aborted.
 */
export async function useSlot(
  slot: Slot,
  mapping: Mapping,
  signal: AbortSignal,
): Promise<OwnedFd | undefined> {
  const { helper } = slot;
  if (!helper.entered) {
    try {
      await orAbort(slot.handshake, signal);
    } catch {
      slot.controller.abort(signal.reason);
      helper.kill();
      await helper.end();
      signal.throwIfAborted();
      return undefined;
    }
  }
  const userns = mapTaken(helper, mapping);
  if (userns === undefined) await helper.end();
  return userns;
}

/**
 * Maps a taken helper that is in its namespace, and lets it go on a timer:
 * closing its pipes would cost the get's caller a good part of its time, and
 * nothing waits for it but settled().
 *
 * @returns The namespace, or `undefined` if the helper is dead or dying since
 * it was last seen (ESRCH once reaped, its pid never reused; EACCES from a
 * zombie's /proc for a rootless caller), or the kernel refused the map (a
 * fresh helper will say so again): then it is killed, for its caller to end.
 */
function mapTaken(helper: Helper, mapping: Mapping): OwnedFd | undefined {
  let userns: OwnedFd;
  try {
    userns = helper.map(mapping);
  } catch {
    helper.kill();
    return undefined;
  }
  helper.letGo();
  return userns;
}
