// The cost of importing the library: `tests/bench/_cli.ts` times `deno run` of this script.
import "../../mod.ts";
