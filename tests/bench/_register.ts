/**
 * Hands benchmark pairs to `deno bench`: one group per pair, the baseline
 * marked as such, so that `deno bench` prints the ratio of their averages.
 * `medians.ts` gives the medians.
 *
 * @module
 */

import type { Bench, Side } from "./_pairs.ts";

/**
 * Registers every pair of a bench with `Deno.bench`.
 *
 * @param bench The pairs, and their cleanup, run when the process unloads.
 */
export function register(bench: Bench): void {
  for (const pair of bench.pairs) {
    for (const [side, baseline] of [[pair.library, false], [pair.baseline, true]] as const) {
      Deno.bench({
        name: side.name,
        group: pair.operation,
        baseline,
        n: pair.n,
        fn: timed(side),
      });
    }
  }
  globalThis.addEventListener("unload", () => bench.close());
}

/** One iteration, with untimed work before and after it kept out of the measure. */
function timed(side: Side): (b: Deno.BenchContext) => void | Promise<void> {
  const { fn, before, after } = side;
  if (before === undefined && after === undefined) return fn;
  return async (b) => {
    await before?.();
    b.start();
    await fn();
    b.end();
    await after?.();
  };
}
