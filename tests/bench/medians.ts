/**
 * `deno task bench`, second part: the medians that `deno bench` does not
 * print. Each pair runs in alternating batches (library, baseline, baseline,
 * library, ...), so that both sides see the same load from whatever else the
 * machine runs; each batch gives one per-iteration time, and the table shows
 * the median batch of each side, their ratio, and the target. Untimed work
 * (a pool's refill) stays out of the batches.
 *
 * `--json` prints the rows as JSON instead. With `--check`, the exit code is
 * 1 if a target is missed; by default a miss shows in the table only.
 *
 * @module
 */

import { mountFdBench, type Pair, type Side, usernsBench } from "./_pairs.ts";

interface Row {
  operation: string;
  library: string;
  baseline: string;
  libraryMicros: number;
  baselineMicros: number;
  ratio: number;
  target: string;
  met: boolean | undefined;
}

/** One batch: the mean time of an iteration, in µs. */
async function batch(side: Side, n: number): Promise<number> {
  const { fn, before } = side;
  let total = 0;
  if (before !== undefined) {
    for (let i = 0; i < n; i++) {
      await before();
      const start = performance.now();
      await fn();
      total += performance.now() - start;
    }
  } else {
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const result = fn();
      if (result instanceof Promise) await result;
    }
    total = performance.now() - start;
  }
  return total / n * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function measure(pair: Pair): Promise<Row> {
  const library: number[] = [];
  const baseline: number[] = [];
  // Warm up both sides: the JIT, the caches, the pool.
  for (let i = 0; i < 3; i++) {
    await batch(pair.library, pair.batch);
    await batch(pair.baseline, pair.batch);
  }
  for (let round = 0; round < pair.rounds; round++) {
    if (round % 2 === 0) {
      library.push(await batch(pair.library, pair.batch));
      baseline.push(await batch(pair.baseline, pair.batch));
    } else {
      baseline.push(await batch(pair.baseline, pair.batch));
      library.push(await batch(pair.library, pair.batch));
    }
  }
  const [lib, base] = [median(library), median(baseline)];
  const ratio = lib / base;
  const { target } = pair;
  let text = "";
  let met: boolean | undefined;
  switch (target.kind) {
    case "ratio":
      text = `≤ ${target.max}×`;
      met = ratio <= target.max;
      break;
    case "time":
      text = `≤ ${format(target.maxMicros)}`;
      met = lib <= target.maxMicros;
      break;
    case "speedup":
      text = `≥ ${target.min}× faster`;
      met = base / lib >= target.min;
      break;
    case "none":
      text = "(context)";
  }
  return {
    operation: pair.operation,
    library: pair.library.name,
    baseline: pair.baseline.name,
    libraryMicros: lib,
    baselineMicros: base,
    ratio,
    target: text,
    met,
  };
}

function format(micros: number): string {
  if (micros >= 1000) return `${(micros / 1000).toFixed(2)} ms`;
  if (micros >= 10) return `${micros.toFixed(1)} µs`;
  return `${micros.toFixed(2)} µs`;
}

const rows: Row[] = [];
for (const make of [mountFdBench, usernsBench]) {
  const bench = await make();
  try {
    for (const pair of bench.pairs) rows.push(await measure(pair));
  } finally {
    bench.close();
  }
}

if (Deno.args.includes("--json")) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  console.log(
    "\n| operation | library (median) | baseline (median) | ratio | target | met |\n" +
      "|---|---|---|---|---|---|",
  );
  for (const row of rows) {
    const ratio = row.ratio < 1
      ? `${row.ratio.toFixed(2)}× (${(1 / row.ratio).toFixed(2)}× faster)`
      : `${row.ratio.toFixed(2)}×`;
    const met = row.met === undefined ? "" : row.met ? "yes" : "**no**";
    console.log(
      `| ${row.operation} | ${format(row.libraryMicros)} | ${
        format(row.baselineMicros)
      }: ${row.baseline} | ${ratio} | ${row.target} | ${met} |`,
    );
  }
  console.log(
    `\nDeno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs; ` +
      "medians of alternating batches: `deno run --allow-all tests/bench/medians.ts`",
  );
}
if (Deno.args.includes("--check") && rows.some((row) => row.met === false)) Deno.exitCode = 1;
