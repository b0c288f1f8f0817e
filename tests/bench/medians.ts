/**
 * `deno task bench`, second part: the medians that `deno bench` does not
 * print. Each pair runs in alternating batches (library, baseline, C floor,
 * then C floor, baseline, library, ...), so that every side sees the same
 * load from whatever else the machine runs; each batch gives one
 * per-iteration time, and the table shows the median batch of each side,
 * the library's ratio to its Deno baseline and to its C floor, and the
 * targets. Untimed work (a pool's refill, an unmount) stays out of the
 * batches. A side with a `loop` is timed as application code runs it, one
 * awaited call after another in a plain loop; a synchronous baseline, as a
 * plain loop of calls.
 *
 * The C floor is `floor.c`, built with `cc` when there is one. The
 * command-line pairs time `examples/mount_idmapped.ts` beside an empty script
 * and beside the C tool named by `MOUNT_IDMAPPED_BIN`.
 *
 * It runs in a mount namespace of its own: as root, it re-runs itself under
 * `unshare --mount --propagation private` when it has none; as anyone else,
 * under `unshare --user --map-auto --map-root-user --mount`.
 *
 * Options: `--json` prints the rows as JSON instead of the table;
 * `--only=mountfd,userns,cli` runs some groups of pairs; `--rounds=N` runs N
 * rounds of every pair (a quick look; the defaults give stable medians);
 * `--check` exits 1 when a target is missed, and says which on stderr;
 * `--processes=N` runs the whole bench in N fresh processes, one after
 * another, and shows for each row the process whose figure is the median of
 * the N, with the range the N gave.
 *
 * Why several processes: a warm row's ratio moves by up to 15% from one
 * process to the next on one machine, more than between rows of one process,
 * because each process compiles its loops anew (and where every syscall
 * flushes the TLB, as under `pti=on`, where the compiled code lands counts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { CANNOT_MOUNT } from "../_env.ts";
import { C_TOOL_VARIABLE, cliBench } from "./_cli.ts";
import { type CFloor, startFloor } from "./_floor.ts";
import {
  type Bench,
  childrenCpuMicros,
  type Floor,
  IDS,
  mountFdBench,
  type Pair,
  type Side,
  type Target,
  type Timing,
} from "./_pairs.ts";
import { usernsBench } from "./_userns_pairs.ts";
import { makeScratch } from "./_scratch.ts";

const REEXEC = "MOUNTFD_BENCH_NAMESPACE";
const GROUPS = ["mountfd", "userns", "cli"] as const;
type Group = typeof GROUPS[number];

const options = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean" },
    check: { type: "boolean" },
    only: { type: "string" },
    rounds: { type: "string" },
    processes: { type: "string" },
  },
}).values;
const processes = Number(options.processes ?? 1);
if (!Number.isInteger(processes) || processes < 1) {
  console.error(`medians: --processes: expected a positive integer, got ${options.processes}`);
  Deno.exit(2);
}
const only = (options.only?.split(",") ?? [...GROUPS]) as Group[];
for (const group of only) {
  if (!GROUPS.includes(group)) {
    console.error(`medians: unknown group ${JSON.stringify(group)}: expected ${GROUPS.join(",")}`);
    Deno.exit(2);
  }
}

if (CANNOT_MOUNT !== undefined) {
  if (Deno.env.get(REEXEC) !== undefined) {
    console.error(`medians: can't mount, even in a namespace of its own: ${CANNOT_MOUNT}`);
    Deno.exit(1);
  }
  const namespace = Deno.uid() === 0
    ? ["--mount", "--propagation", "private"]
    : ["--user", "--map-auto", "--map-root-user", "--mount"];
  console.error(`medians: running in a mount namespace of its own: unshare ${namespace.join(" ")}`);
  const self = fileURLToPath(import.meta.url);
  const { code } = await new Deno.Command("unshare", {
    args: [...namespace, "--", Deno.execPath(), "run", "--allow-all", self, ...Deno.args],
    env: { [REEXEC]: "1" },
  }).spawn().status;
  Deno.exit(code);
}

/** A target, and whether the medians met it (`undefined`: not measured). */
interface Checked {
  text: string;
  met: boolean | undefined;
  why?: string;
}

interface Row {
  operation: string;
  baseline: string;
  floor?: string;
  libraryMicros: number;
  baselineMicros: number;
  floorMicros?: number;
  floorMissing?: string;
  /** For a row of programs: the median CPU time (user + system) of each side's programs. */
  cpu?: { library: number; baseline: number; floor?: number };
  targets: Checked[];
  overhead: boolean;
  /**
   * The figure its first target is on (the ratio to the baseline without
   * one): what `--processes` takes the median of.
   */
  primary: number;
  /** What `primary` is: a ratio, or a time or overhead in µs. */
  primaryKind: "ratio" | "time" | "overhead";
  /** With `--processes`: how many processes, and the least and most `primary`. */
  spread?: { processes: number; min: number; max: number };
}

/** One batch: the mean time of an iteration, and the CPU time of the programs it ran. */
async function batch(side: Side, n: number): Promise<Timing> {
  const { fn, loop, before, after } = side;
  const cpuStart = childrenCpuMicros();
  let cpu = 0;
  let total = 0;
  if (before !== undefined || after !== undefined) {
    for (let i = 0; i < n; i++) {
      await before?.();
      const start = performance.now();
      const cpuBefore = childrenCpuMicros();
      await fn();
      total += performance.now() - start;
      cpu += childrenCpuMicros() - cpuBefore;
      await after?.();
    }
  } else {
    const start = performance.now();
    if (loop !== undefined) await loop(n);
    else {
      for (let i = 0; i < n; i++) {
        const result = fn();
        if (result instanceof Promise) await result;
      }
    }
    total = performance.now() - start;
    cpu = childrenCpuMicros() - cpuStart;
  }
  return { micros: total / n * 1000, cpuMicros: cpu / n };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** How `value` compares with `reference`: "1.38× slower" or "2.10× faster". */
function relation(value: number, reference: number): string {
  return value >= reference
    ? `${(value / reference).toFixed(2)}× slower`
    : `${(reference / value).toFixed(2)}× faster`;
}

/** A ratio target in words: "at most 1.2× slower than X", "at least 2.86× faster than X". */
function ratioText(max: number, than: string): string {
  if (max === 1) return `no slower than ${than}`;
  return max > 1
    ? `at most ${max}× slower than ${than}`
    : `at least ${(1 / max).toFixed(2)}× faster than ${than}`;
}

function check(
  target: Target,
  lib: number,
  base: number,
  floor: Floor,
  floorMicros?: number,
): Checked {
  switch (target.kind) {
    case "ratio":
      return { text: ratioText(target.max, "the baseline"), met: lib / base <= target.max };
    case "floor": {
      const text = ratioText(target.max, "the C floor");
      if (floorMicros === undefined) return { text, met: undefined, why: floor.missing };
      return { text, met: lib / floorMicros <= target.max };
    }
    case "overhead":
      return {
        text: `at most +${format(target.maxMicros)} over the baseline`,
        met: lib - base <= target.maxMicros,
      };
    case "time":
      return { text: `at most ${format(target.maxMicros)}`, met: lib <= target.maxMicros };
  }
}

async function measure(pair: Pair): Promise<Row> {
  const library: Timing[] = [];
  const baseline: Timing[] = [];
  const floors: Timing[] = [];
  const floor: Floor = pair.floor ?? { name: "", missing: "no C equivalent" };
  const { measure: floorBatch } = floor;
  const sides: (() => Promise<void>)[] = [
    async () => void library.push(await batch(pair.library, pair.batch)),
    async () => void baseline.push(await batch(pair.baseline, pair.batch)),
  ];
  if (floorBatch !== undefined) {
    sides.push(async () => void floors.push(await floorBatch(pair.batch)));
  }
  // Warm up every side: the JIT, the caches, the pool. Three rounds, and
  // for a fast pair as many more as fit in half a second: the optimizing
  // compiler needs more than three batches of a few ms to settle.
  const warmUntil = performance.now() + 500;
  for (let i = 0; i < 3 || performance.now() < warmUntil; i++) {
    for (const side of sides) await side();
  }
  library.length = baseline.length = floors.length = 0;
  const rounds = options.rounds === undefined ? pair.rounds : Number(options.rounds);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) await side();
  }
  const wall = (timings: Timing[]) => median(timings.map((timing) => timing.micros));
  const cpu = (timings: Timing[]) => median(timings.map((timing) => timing.cpuMicros ?? NaN));
  const [lib, base] = [wall(library), wall(baseline)];
  const floorMicros = floors.length > 0 ? wall(floors) : undefined;
  return {
    operation: pair.operation,
    baseline: pair.baseline.name,
    floor: pair.floor?.name,
    libraryMicros: lib,
    baselineMicros: base,
    floorMicros,
    floorMissing: floorMicros === undefined ? floor.missing : undefined,
    cpu: pair.programs
      ? {
        library: cpu(library),
        baseline: cpu(baseline),
        floor: floors.length > 0 ? cpu(floors) : undefined,
      }
      : undefined,
    targets: pair.targets.map((target) => check(target, lib, base, floor, floorMicros)),
    overhead: pair.targets.some((target) => target.kind === "overhead"),
    ...primary(pair.targets[0], lib, base, floorMicros),
  };
}

/** The figure `target` is checked on, and what it is: a ratio, an overhead or a time. */
function primary(
  target: Target | undefined,
  lib: number,
  base: number,
  floor?: number,
): Pick<Row, "primary" | "primaryKind"> {
  switch (target?.kind) {
    case "floor":
      return { primary: floor === undefined ? lib / base : lib / floor, primaryKind: "ratio" };
    case "overhead":
      return { primary: lib - base, primaryKind: "overhead" };
    case "time":
      return { primary: lib, primaryKind: "time" };
    default:
      return { primary: lib / base, primaryKind: "ratio" };
  }
}

/**
 * Runs the bench in `n` fresh processes, one after another, and keeps for
 * each row the process whose figure is the median of the `n`.
 */
async function inProcesses(n: number): Promise<Row[]> {
  const self = fileURLToPath(import.meta.url);
  // Each process measures; this one checks the targets, on the medians.
  const args = Deno.args.filter((arg) => !arg.startsWith("--processes") && arg !== "--check");
  const runs: Row[][] = [];
  for (let i = 0; i < n; i++) {
    console.error(`medians: process ${i + 1} of ${n}`);
    // A mount namespace of its own, inside this one (where it is root).
    const { code, stdout } = await new Deno.Command("unshare", {
      args: [
        ...["--mount", "--propagation", "private", "--"],
        ...[Deno.execPath(), "run", "--allow-all", self, ...args, "--json"],
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (code !== 0) throw new Error(`medians: process ${i + 1} of ${n} exited with ${code}`);
    runs.push(JSON.parse(new TextDecoder().decode(stdout)).rows);
  }
  return runs[0].map((_, index) => {
    const byFigure = runs.map((rows) => rows[index]).sort((a, b) => a.primary - b.primary);
    return {
      ...byFigure[(byFigure.length - 1) >> 1],
      spread: { processes: n, min: byFigure[0].primary, max: byFigure.at(-1)!.primary },
    };
  });
}

function format(micros: number): string {
  if (micros >= 1000) return `${(micros / 1000).toFixed(micros >= 100000 ? 0 : 2)} ms`;
  if (micros >= 10) return `${micros.toFixed(1)} µs`;
  return `${micros.toFixed(2)} µs`;
}

/** The machine, as the header names it. */
function machine(): string {
  let cpu = "unknown CPU";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1].trim() ?? cpu;
  } catch {
    // No /proc/cpuinfo: the CPU stays unnamed.
  }
  return `${cpu}, ${navigator.hardwareConcurrency} CPUs`;
}

function loadAverage(): string {
  return Deno.loadavg().map((load) => load.toFixed(2)).join(" ");
}

const startLoad = loadAverage();
const started = new Date();
const scratch = makeScratch();
let floor: CFloor | undefined;
const rows: Row[] = [];
try {
  if (processes > 1) rows.push(...await inProcesses(processes));
  else {
    floor = await startFloor(scratch.dir, IDS.floor);
    if (floor.missing !== undefined) console.error(`medians: no C floor: ${floor.missing}`);
    const makers: Record<Group, () => Bench | Promise<Bench>> = {
      mountfd: () => mountFdBench(scratch, floor),
      userns: () => usernsBench(floor),
      cli: () => cliBench(scratch),
    };
    if (only.includes("cli") && !Deno.env.get(C_TOOL_VARIABLE)) {
      console.error(
        `medians: no C mount-idmapped: ${C_TOOL_VARIABLE} is not set; its column is skipped ` +
          "(build brauner/mount-idmapped and name the binary there)",
      );
    }
    for (const group of GROUPS.filter((group) => only.includes(group))) {
      const bench = await makers[group]();
      try {
        for (const pair of bench.pairs) rows.push(await measure(pair));
      } finally {
        bench.close();
      }
    }
  }
} finally {
  await floor?.close();
  scratch.close();
}

if (options.json) {
  console.log(JSON.stringify({ machine: machine(), load: startLoad, rows }, null, 2));
} else {
  console.log(
    `\n${machine()}; load average ${startLoad} at the start, ${loadAverage()} at the end; ` +
      `Linux ${Deno.osRelease()}, Deno ${Deno.version.deno}, ${scratch.mode}, ` +
      `${started.toISOString().slice(0, 16).replace("T", " ")} UTC\n\n` +
      "| operation | library | Deno baseline | vs baseline | C floor | vs floor | target | met |\n" +
      "|---|---|---|---|---|---|---|---|",
  );
  const cpu = (micros?: number) =>
    micros === undefined || Number.isNaN(micros) ? "" : ` (CPU ${format(micros)})`;
  for (const row of rows) {
    let vsBaseline = relation(row.libraryMicros, row.baselineMicros);
    const signed = (diff: number) => `${diff >= 0 ? "+" : "−"}${format(Math.abs(diff))}`;
    if (row.cpu !== undefined) {
      const cpuDiff = row.cpu.library - row.cpu.baseline;
      vsBaseline += ` (${signed(row.libraryMicros - row.baselineMicros)}; CPU ${signed(cpuDiff)})`;
    } else if (row.overhead) {
      vsBaseline += ` (${signed(row.libraryMicros - row.baselineMicros)})`;
    }
    const floorCell = row.floorMicros !== undefined
      ? `${format(row.floorMicros)}${cpu(row.cpu?.floor)}: ${row.floor}`
      : row.floor === undefined
      ? ""
      : `n/a: ${row.floorMissing}`;
    const vsFloor = row.floorMicros !== undefined
      ? relation(row.libraryMicros, row.floorMicros)
      : "";
    if (row.spread !== undefined) {
      const { processes, min, max } = row.spread;
      const figure = (value: number) =>
        row.primaryKind === "ratio"
          ? relation(value, 1)
          : row.primaryKind === "overhead"
          ? signed(value)
          : format(value);
      vsBaseline += `; over ${processes} processes, ${figure(min)} to ${figure(max)}`;
    }
    const targets = row.targets.map((target) => target.text).join("; ");
    const met = row.targets.map((target) =>
      target.met === undefined ? "not measured" : target.met ? "yes" : "**no**"
    ).join("; ");
    console.log(
      `| ${row.operation} | ${format(row.libraryMicros)}${cpu(row.cpu?.library)} | ${
        format(row.baselineMicros)
      }${cpu(row.cpu?.baseline)}: ${row.baseline} | ${vsBaseline} | ${floorCell} | ${vsFloor} | ${
        targets || "(context)"
      } | ${met} |`,
    );
  }
  console.log(
    "\nMedians of alternating batches; a row's ratios are measured in the same run. " +
      "Rows of programs show the median CPU time (user + system) of the programs too, " +
      "which the machine's load inflates less than their wall-clock time; targets are " +
      "on wall-clock time." +
      (processes > 1
        ? ` Each row is the one of ${processes} fresh processes whose figure is their median.`
        : "") +
      ` \`deno run --allow-all tests/bench/medians.ts${
        processes > 1 ? ` --processes=${processes}` : ""
      }\``,
  );
}

const missed = rows.flatMap((row) =>
  row.targets.filter((target) => target.met === false).map((target) =>
    `${row.operation}: ${format(row.libraryMicros)}, ${target.text}`
  )
);
const unmeasured = rows.flatMap((row) =>
  row.targets.filter((target) => target.met === undefined).map((target) =>
    `${row.operation}: ${target.text}: ${target.why}`
  )
);
for (const line of unmeasured) console.error(`not measured: ${line}`);
if (options.check) {
  for (const line of missed) console.error(`missed: ${line}`);
  if (missed.length > 0) Deno.exitCode = 1;
}
