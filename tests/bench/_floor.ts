/**
 * The C floor: `floor.c`, built with `cc` into a temporary directory at bench
 * time and driven over a pipe, times the library's operations with no
 * runtime at all. Where it can't be built or run, every floor says why.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { Floor } from "./_pairs.ts";

const SOURCE = fileURLToPath(new URL("./floor.c", import.meta.url));

/** The operations `floor.c` times. */
export type FloorOp = "open" | "idmap" | "dup" | "userns" | "pooled";

/** A running floor program, or the reason there is none. */
export interface CFloor {
  /** Why there is no floor, or `undefined` when there is one. */
  readonly missing?: string;
  /**
   * A floor for a row: `scale` operations make one iteration of the row.
   *
   * @param name What it does, for the table.
   * @param op The operation.
   * @param scale Operations per iteration of the row.
   * @returns The floor.
   */
  floor(name: string, op: FloorOp, scale?: number): Floor;
  /** Ends the program and removes its build. */
  close(): Promise<void>;
}

/** Reads a stream line by line. */
class Lines {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line, or `undefined` at the end. */
  async next(): Promise<string | undefined> {
    while (!this.#buffer.includes("\n")) {
      const { done, value } = await this.#reader.read();
      if (done) {
        const rest = this.#buffer;
        this.#buffer = "";
        return rest === "" ? undefined : rest;
      }
      this.#buffer += value;
    }
    const end = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end + 1);
    return line;
  }

  /** Drains the rest. */
  async drain(): Promise<void> {
    while (!(await this.#reader.read()).done);
  }
}

function missingFloor(reason: string): CFloor {
  return {
    missing: reason,
    floor: (name) => ({ name, missing: reason }),
    close: () => Promise.resolve(),
  };
}

/**
 * Builds `floor.c` and starts it.
 *
 * @param dir A directory the caller may id-map.
 * @param hostID An id the caller may map.
 * @returns The floor, or the reason there is none (no `cc`, a failed build,
 * a failed start): the bench runs without it.
 */
export async function startFloor(dir: string, hostID: number): Promise<CFloor> {
  const build = Deno.makeTempDirSync({ prefix: "mountfd-floor-" });
  const binary = `${build}/floor`;
  const cleanup = () => Deno.removeSync(build, { recursive: true });
  let compiled: Deno.CommandOutput;
  try {
    compiled = await new Deno.Command("cc", {
      args: ["-O2", "-o", binary, SOURCE],
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (error) {
    cleanup();
    if (error instanceof Deno.errors.NotFound) return missingFloor("no C compiler (`cc`) on PATH");
    throw error;
  }
  if (!compiled.success) {
    cleanup();
    const first = new TextDecoder().decode(compiled.stderr).trim().split("\n")[0];
    return missingFloor(`\`cc\` could not build floor.c: ${first}`);
  }
  const child = new Deno.Command(binary, {
    args: [dir, String(hostID)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = new Lines(child.stdout);
  const encoder = new TextEncoder();
  let failed: string | undefined;
  let queue = Promise.resolve();

  async function run(op: FloorOp, n: number): Promise<number> {
    await writer.write(encoder.encode(`${op} ${n}\n`));
    const line = await lines.next();
    const micros = Number(line);
    if (line === undefined || line === "" || !Number.isFinite(micros)) {
      throw new Error(`C floor ${op}: ${line ?? "exited"}`);
    }
    return micros;
  }

  // A first request checks that it runs here (a user namespace, an idmap).
  for (const op of ["dup", "idmap"] as const) {
    try {
      await run(op, 1);
    } catch (error) {
      failed = (error as Error).message;
      break;
    }
  }
  const close = async () => {
    await writer.close().catch(() => {});
    await lines.drain();
    await child.status;
    cleanup();
  };
  if (failed !== undefined) {
    await close();
    return missingFloor(failed);
  }
  return {
    floor(name, op, scale = 1): Floor {
      return {
        name,
        measure: (n) => {
          // One request at a time on the pipe.
          const result = queue.then(() => run(op, n * scale));
          queue = result.then(() => {}, () => {});
          return result.then((micros) => ({ micros: micros * scale }));
        },
      };
    },
    close,
  };
}
