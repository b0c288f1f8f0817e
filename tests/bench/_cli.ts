/**
 * The command-line pairs: `examples/mount_idmapped.ts` run as `deno task
 * mount-idmapped` runs it, beside `deno run` of an empty script (Deno's own
 * start) and beside the original C `mount-idmapped`, a binary named by the
 * environment variable `MOUNT_IDMAPPED_BIN` (build it from
 * brauner/mount-idmapped; without it, the C column says so).
 *
 * The end-to-end pair mounts, so it runs only in a mount namespace of the
 * bench's own: `medians.ts` makes one.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { MNT_DETACH } from "../../ffi/constants.ts";
import { umount2 } from "../../ffi/syscalls.ts";
import { CANNOT_MOUNT } from "../_env.ts";
import {
  type Bench,
  childrenCpuMicros,
  type Floor,
  IDS,
  type Pair,
  type Side,
  type Timing,
} from "./_pairs.ts";
import type { Scratch } from "./_scratch.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EMPTY = fileURLToPath(new URL("./_empty.ts", import.meta.url));
const IMPORT = fileURLToPath(new URL("./_import.ts", import.meta.url));
const FIRST_MOUNT = fileURLToPath(new URL("./_first_mount.ts", import.meta.url));

/** The environment variable naming the C tool. */
export const C_TOOL_VARIABLE = "MOUNT_IDMAPPED_BIN";

/** The permission flags of `deno task mount-idmapped` and the file it runs, from deno.json. */
function task(): { flags: string[]; tool: string } {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const words: string[] = config.tasks["mount-idmapped"].split(/\s+/);
  const flags = words.filter((word) => word.startsWith("--"));
  return { flags, tool: `${ROOT}/${words[words.indexOf(flags.at(-1)!) + 1]}` };
}

/** Runs a program to its end; throws unless it exits with `code`. */
async function run(program: string, args: string[], code: number): Promise<void> {
  const out = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== code) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${program} ${args.join(" ")}: exit ${out.code}, expected ${code}: ${err}`);
  }
}

/** A side that runs a program, times each run, and does `after` untimed. */
function program(
  name: string,
  command: string,
  args: string[],
  code: number,
  after?: () => void,
): Side {
  return { name, fn: () => run(command, args, code), after };
}

/** A floor that times the C tool as {@linkcode program} times Deno. */
function cFloor(
  name: string,
  bin: string | undefined,
  args: string[],
  code: number,
  after?: () => void,
): Floor {
  if (bin === undefined) return { name, missing: `${C_TOOL_VARIABLE} is not set` };
  return {
    name,
    async measure(n: number): Promise<Timing> {
      let total = 0;
      let cpu = 0;
      for (let i = 0; i < n; i++) {
        const [start, cpuStart] = [performance.now(), childrenCpuMicros()];
        await run(bin, args, code);
        total += performance.now() - start;
        cpu += childrenCpuMicros() - cpuStart;
        after?.();
      }
      return { micros: total / n * 1000, cpuMicros: cpu / n };
    },
  };
}

/**
 * The command-line pairs.
 *
 * @param scratch A directory the tool may id-map.
 * @returns The pairs: `--help`, the mount path up to its first syscall (as
 * the task runs it), the import of mod.ts and a first call, and a whole
 * mount, each beside an empty script and, where there is one, the C tool.
 * @throws {Error} Outside a mount namespace of the bench's own.
 */
export function cliBench(scratch: Scratch): Bench {
  if (CANNOT_MOUNT !== undefined) {
    throw new Error(`the command-line pairs mount, and can't here: ${CANNOT_MOUNT}`);
  }
  const bin = Deno.env.get(C_TOOL_VARIABLE) || undefined;
  const deno = Deno.execPath();
  const { flags, tool: TOOL } = task();
  const source = `${scratch.dir}/cli-source`;
  const target = `${scratch.dir}/cli-target`;
  const missing = `${scratch.dir}/cli-missing`;
  Deno.mkdirSync(source);
  Deno.mkdirSync(target);
  Deno.writeTextFileSync(`${source}/file`, "");
  const map = `--map-mount=b:0:${IDS.cli}:1`;
  const unmount = () => umount2(target, MNT_DETACH);
  const empty = program("deno run of an empty script", deno, ["run", ...flags, EMPTY], 0);
  const rounds = { n: 10, batch: 1, rounds: 21, programs: true };
  const pairs: Pair[] = [
    {
      operation: "`mount-idmapped --help`",
      library: program("mount-idmapped --help", deno, ["run", ...flags, TOOL, "--help"], 0),
      baseline: empty,
      floor: cFloor("C mount-idmapped --help", bin, ["--help"], 0),
      targets: [{ kind: "overhead", maxMicros: 15000 }],
      ...rounds,
    },
    {
      operation: "`mount-idmapped` up to its first syscall (module loading: a missing source)",
      library: program(
        "mount-idmapped, a missing source",
        deno,
        ["run", ...flags, TOOL, map, missing, target],
        1,
      ),
      baseline: empty,
      floor: cFloor("C mount-idmapped, a missing source", bin, [map, missing, target], 1),
      targets: [{ kind: "overhead", maxMicros: 15000 }],
      ...rounds,
    },
    {
      operation: '`import "./mod.ts"`, a fresh process',
      library: program(
        "deno run of a script that imports mod.ts",
        deno,
        ["run", ...flags, IMPORT],
        0,
      ),
      baseline: empty,
      targets: [{ kind: "overhead", maxMicros: 5000 }],
      ...rounds,
    },
    {
      operation: "the same, then one plain `mountFd`: what a process's first call pays (context)",
      library: program(
        "deno run of a script that imports mod.ts and calls mountFd once",
        deno,
        ["run", ...flags, FIRST_MOUNT, source],
        0,
      ),
      baseline: program(
        "deno run of a script that imports mod.ts",
        deno,
        ["run", ...flags, IMPORT],
        0,
      ),
      targets: [],
      ...rounds,
    },
    {
      operation: "`mount-idmapped` end to end: one id-mapped mount",
      library: program(
        "mount-idmapped",
        deno,
        ["run", ...flags, TOOL, map, source, target],
        0,
        unmount,
      ),
      baseline: empty,
      floor: cFloor("C mount-idmapped", bin, [map, source, target], 0, unmount),
      targets: [{ kind: "overhead", maxMicros: 10000 }],
      ...rounds,
    },
  ];
  return { pairs, close(): void {} };
}
