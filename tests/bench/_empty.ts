// Deno's own start: `tests/bench/_cli.ts` times `deno run` of this script, which does nothing.
