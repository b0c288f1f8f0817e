import assert from "node:assert/strict";
import { checkIDMaps, checkMapping, formatIDMaps, mappingKey } from "../lib/idmap.ts";

const one = (containerID: number, hostID: number, size: number) => ({
  containerID,
  hostID,
  size,
});

Deno.test("checkIDMaps() accepts what the kernel accepts", () => {
  checkIDMaps([one(0, 100000, 65536)], "m");
  checkIDMaps([one(0, 0, 4294967295)], "m");
  checkIDMaps([one(4294967294, 0, 1)], "m");
  checkIDMaps([one(0, 1000, 10), one(10, 2000, 10)], "m");
  checkIDMaps(Array.from({ length: 340 }, (_, i) => one(i, 1000 + i, 1)), "m");
});

Deno.test("checkIDMaps() names the bad field", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["not an array", { containerID: 0 }, /^Invalid m: expected an array .* got object$/],
    ["empty", [], /^Invalid m: needs at least one entry$/],
    [
      "too many entries",
      Array.from({ length: 341 }, (_, i) => one(i, 1000 + i, 1)),
      /^Invalid m: the kernel takes at most 340 entries, got 341$/,
    ],
    ["null entry", [null], /^Invalid m\[0\]: expected \{ containerID, hostID, size \}, got null$/],
    ["negative id", [one(0, -1, 1)], /^Invalid m\[0\]\.hostID: .* got -1$/],
    ["fractional id", [one(0.5, 0, 1)], /^Invalid m\[0\]\.containerID: .* got 0\.5$/],
    ["NaN", [one(0, NaN, 1)], /^Invalid m\[0\]\.hostID: .* got NaN$/],
    ["string id", [{ containerID: "0", hostID: 0, size: 1 }], /containerID: .* got string$/],
    ["missing size", [{ containerID: 0, hostID: 0 }], /^Invalid m\[0\]\.size: .* got undefined$/],
    ["size 0", [one(0, 0, 0)], /^Invalid m\[0\]\.size: expected an integer from 1 /],
    ["id 2^32 - 1", [one(4294967295, 0, 1)], /^Invalid m\[0\]\.containerID/],
    ["id + size = 2^32", [one(1, 0, 4294967295)], /containerID \+ size must be below 2\^32/],
    ["host id + size", [one(0, 4294967000, 1000)], /hostID \+ size must be below 2\^32/],
    [
      "container ranges overlap",
      [one(0, 1000, 10), one(5, 2000, 10)],
      /^Invalid m: entries 0 and 1 overlap in containerID$/,
    ],
    [
      "host ranges overlap",
      [one(100, 1000, 10), one(0, 1009, 1), one(50, 5000, 1)],
      /^Invalid m: entries 0 and 1 overlap in hostID$/,
    ],
  ];
  for (const [name, maps, message] of cases) {
    await t.step(name, () => {
      assert.throws(() => checkIDMaps(maps, "m"), (e: unknown) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

Deno.test("checkMapping() checks both lists", () => {
  assert.throws(() => checkMapping(null, "mapping"), /^TypeError: Invalid mapping: expected/);
  assert.throws(
    () => checkMapping({ uidMappings: [one(0, 1, 1)] }, "mapping"),
    /Invalid mapping\.gidMappings: expected an array/,
  );
});

Deno.test("mappingKey() ignores the order of entries, not their content", () => {
  const a = one(0, 1000, 10);
  const b = one(10, 5000, 10);
  const key = mappingKey({ uidMappings: [a, b], gidMappings: [a] });
  assert.equal(key, mappingKey({ uidMappings: [b, a], gidMappings: [a] }));
  assert.equal(key, "uid=0:1000:10,10:5000:10;gid=0:1000:10");
  assert.notEqual(key, mappingKey({ uidMappings: [a], gidMappings: [a, b] }));
  assert.notEqual(key, mappingKey({ uidMappings: [a, one(10, 5000, 11)], gidMappings: [a] }));
});

Deno.test("formatIDMaps() writes one line per range", () => {
  assert.equal(formatIDMaps([one(0, 100000, 65536)]), "0 100000 65536\n");
  assert.equal(formatIDMaps([one(0, 1, 2), one(3, 4, 5)]), "0 1 2\n3 4 5\n");
});
