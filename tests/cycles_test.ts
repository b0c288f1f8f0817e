import assert from "node:assert/strict";
import { cycles } from "./cycles.ts";

Deno.test("cycles finds each import cycle, type-only or not, and nothing in a tree", () => {
  const graph = new Map([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a", "d"]],
    ["d", []],
    ["e", ["e"]],
    ["f", ["d"]],
  ]);
  assert.deepEqual(cycles(graph), [["a", "b", "c"], ["e"]]);
  assert.deepEqual(cycles(new Map([["x", ["y"]], ["y", []]])), []);
});

Deno.test("the library has no import cycle, and ffi/ imports nothing above it", async () => {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", new URL("./cycles.ts", import.meta.url).pathname],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
});
