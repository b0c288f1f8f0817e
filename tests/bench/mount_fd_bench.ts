/**
 * `deno task bench`: mountFd beside the same syscalls made through a bare
 * `Deno.dlopen`. Run as root, or rootless under `unshare --user --map-auto
 * --map-root-user --mount`.
 *
 * @module
 */

import { mountFdBench } from "./_pairs.ts";
import { register } from "./_register.ts";
import { makeScratch } from "./_scratch.ts";

const scratch = makeScratch();
const bench = await mountFdBench(scratch);
register({
  pairs: bench.pairs,
  close(): void {
    bench.close();
    scratch.close();
  },
});
