/**
 * The one wait: a promise that ends when its work settles, when a signal
 * aborts, or when time runs out, and that removes its listeners when it
 * does. Timers are `AbortSignal.timeout`s, not `setTimeout`s: Deno loads its
 * Node timers on a process's first `setTimeout` (8-18 ms here), which would
 * fall on a cold `Handles.get` or on the command line's one mount.
 *
 * @module
 */

/** Settles an {@linkcode abortable} promise: `false` if it had settled already. */
export interface Settle<T> {
  /** Fulfils it; `false` if it had settled already (a late value to clean up). */
  resolve(value: T): boolean;
  /** Rejects it; `false` if it had settled already. */
  reject(error: unknown): boolean;
}

/**
 * A promise that `start` settles, unless `signal` aborts first (or has
 * already, once `start` has run): then `onAbort` decides (by default, it
 * rejects with the signal's reason). The abort listener is removed once the
 * promise settles, whoever settles it.
 *
 * @param signal Ends the wait; `undefined` for none.
 * @param start Starts the work, with the promise's settle functions.
 * @param onAbort What an abort does, with the same functions.
 * @returns The promise.
 *
 * @example Wait for a reply, or for an abort
 * ```ts
 * import { abortable } from "./async.ts";
 * const reply = Promise.resolve(42);
 * const value = await abortable(AbortSignal.timeout(1000), ({ resolve, reject }) => {
 *   reply.then(resolve, reject);
 * });
 * ```
 */
export function abortable<T>(
  signal: AbortSignal | undefined,
  start: (settle: Settle<T>) => void,
  onAbort: (settle: Settle<T>) => void = (settle) => settle.reject(signal!.reason),
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const settle: Settle<T> = {
      resolve(value: T): boolean {
        if (settled) return false;
        done();
        resolve(value);
        return true;
      },
      reject(error: unknown): boolean {
        if (settled) return false;
        done();
        reject(error);
        return true;
      },
    };
    const abort = (): void => onAbort(settle);
    const done = (): void => {
      settled = true;
      signal?.removeEventListener("abort", abort);
    };
    start(settle);
    if (settled) return;
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * `promise`, or the signal's reason if it aborts first.
 *
 * @param promise What to wait for.
 * @param signal Ends the wait with its reason.
 * @returns What `promise` fulfils with.
 * @throws Its rejection, or the signal's reason.
 *
 * @example Stop waiting for a handshake when the caller aborts
 * ```ts
 * import { orAbort } from "./async.ts";
 * const value = await orAbort(Promise.resolve(1), AbortSignal.timeout(1000));
 * ```
 */
export function orAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  return abortable(signal, ({ resolve, reject }) => void promise.then(resolve, reject));
}

/** The longest delay a timer takes: 2^31 - 1 ms, about 24.8 days. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * Waits for `promise` for up to `ms`, or until `signal` aborts. While the
 * wait lasts, its timer keeps Deno running; once it ends, nothing does.
 *
 * @param promise What to wait for.
 * @param ms The bound, in ms.
 * @param signal Ends the wait with its reason.
 * @returns `true` once it fulfils, `false` if time runs out first.
 * @throws Its rejection, or the signal's reason.
 *
 * @example Give a helper 100 ms
 * ```ts
 * import { within } from "./async.ts";
 * const ready = await within(new Promise(() => {}), 100); // false
 * ```
 */
export function within(
  promise: Promise<unknown>,
  ms: number,
  signal?: AbortSignal,
): Promise<boolean> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const timeout = AbortSignal.timeout(Math.min(Math.ceil(ms), MAX_DELAY));
  const either = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  return abortable(either, ({ resolve, reject }) => {
    promise.then(() => resolve(true), reject);
  }, ({ resolve, reject }) => signal?.aborted ? reject(signal.reason) : resolve(false));
}

/**
 * A delay of `ms`, on the same kind of timer.
 *
 * @param ms How long, in ms.
 * @returns A promise that fulfils then.
 *
 * @example Back off before polling again
 * ```ts
 * import { delay } from "./async.ts";
 * await delay(5);
 * ```
 */
export function delay(ms: number): Promise<void> {
  return abortable(AbortSignal.timeout(ms), () => {}, ({ resolve }) => resolve());
}

/** The jobs of the pending {@linkcode afterThisTurn} timer, if one is pending. */
let turn: Set<() => void> | undefined;

/**
 * Runs `fn` on a timer, once this turn and the continuations it resolved are
 * over. The timer keeps Deno running until it fires. Every call made before
 * it fires shares it: a timer costs ~30 µs to make here, a good part of a
 * pooled get, which lets its helper go and refills its pool.
 *
 * @param fn What to run. An error it throws is reported, as an event
 * listener's is, and the jobs after it still run.
 * @returns A function that cancels it.
 *
 * @example Let a helper go after the caller has its answer
 * ```ts
 * import { afterThisTurn } from "./async.ts";
 * afterThisTurn(() => console.log("later"));
 * ```
 */
export function afterThisTurn(fn: () => void): () => void {
  const job = (): void => fn();
  let jobs = turn;
  if (jobs === undefined) {
    const mine = jobs = turn = new Set();
    // onabort rather than addEventListener: ~6 µs less in a cold path (a
    // pooled get), and the timer holds the signal, so it fires all the same.
    AbortSignal.timeout(0).onabort = () => {
      if (turn === mine) turn = undefined;
      for (const job of mine) {
        try {
          job();
        } catch (error) {
          reportError(error);
        }
      }
    };
  }
  jobs.add(job);
  return () => void jobs.delete(job);
}
