import assert from "node:assert/strict";
import { MS_BIND } from "../ffi/constants.ts";
import { mount } from "./_syscalls.ts";
import { checkIDMaps, checkMapping } from "../lib/id_ranges.ts";
import { formatIDMaps, knownKey, mappingKey, parseIDMap } from "../lib/userns/idmap.ts";
import { getUserNamespaceMappings, isSameMapping, MountError } from "../mod.ts";
import { mountTest } from "./_mounts.ts";
import { countOps, holdUserns, withSpawnHooks } from "./_process.ts";
import { setFaultHook } from "./_faults.ts";
import { errnoValue } from "../ffi/errno.ts";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids } from "./_leaks.ts";

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

Deno.test("mappingKey() of one mapping object follows changes made in place", () => {
  const range = one(0, 1000, 10);
  const mapping = { uidMappings: [range], gidMappings: [one(0, 1000, 10)] };
  assert.equal(mappingKey(mapping), "uid=0:1000:10;gid=0:1000:10");
  assert.equal(mappingKey(mapping), "uid=0:1000:10;gid=0:1000:10", "the same again");
  range.hostID = 2000;
  assert.equal(mappingKey(mapping), "uid=0:2000:10;gid=0:1000:10", "a number changed");
  mapping.gidMappings[0].size = 5;
  assert.equal(mappingKey(mapping), "uid=0:2000:10;gid=0:1000:5", "a gid number changed");
  mapping.uidMappings.push(one(10, 5000, 1));
  assert.equal(mappingKey(mapping), "uid=0:2000:10,10:5000:1;gid=0:1000:5", "a range added");
  mapping.uidMappings[1] = one(10, 6000, 1);
  assert.equal(mappingKey(mapping), "uid=0:2000:10,10:6000:1;gid=0:1000:5", "a range replaced");
  mapping.uidMappings = [one(0, 7000, 1)];
  assert.equal(mappingKey(mapping), "uid=0:7000:1;gid=0:1000:5", "the list replaced");
  mapping.uidMappings.pop();
  mapping.uidMappings.push(one(0, 7000, 1));
  assert.equal(mappingKey(mapping), "uid=0:7000:1;gid=0:1000:5", "the same numbers again");
});

Deno.test("knownKey() gives a key only for an object seen and not changed since", () => {
  const mapping = { uidMappings: [one(0, 1000, 10)], gidMappings: [one(0, 1000, 10)] };
  assert.equal(knownKey(mapping), undefined, "not seen");
  assert.equal(knownKey(null), undefined);
  assert.equal(knownKey("uid=0:1000:10;gid=0:1000:10"), undefined);
  const key = mappingKey(mapping);
  assert.equal(knownKey(mapping), key);
  assert.equal(knownKey({ ...mapping }), undefined, "another object with the same lists");
  mapping.uidMappings[0].size = -1;
  assert.equal(knownKey(mapping), undefined, "a number changed");
  mapping.uidMappings[0].size = 10;
  assert.equal(knownKey(mapping), key, "changed back");
});

Deno.test("formatIDMaps() writes one line per range", () => {
  assert.equal(formatIDMaps([one(0, 100000, 65536)]), "0 100000 65536\n");
  assert.equal(formatIDMaps([one(0, 1, 2), one(3, 4, 5)]), "0 1 2\n3 4 5\n");
});

Deno.test("isSameMapping() compares in order, as runc does", () => {
  const a = one(0, 1000, 1);
  const b = one(1, 2000, 1);
  assert.equal(isSameMapping([a, b], [{ ...a }, { ...b }]), true);
  assert.equal(isSameMapping([a, b], [b, a]), false);
  assert.equal(isSameMapping([a], [a, b]), false);
  assert.equal(isSameMapping([], []), true);
  assert.equal(isSameMapping([a], [one(0, 1000, 2)]), false);
});

Deno.test("parseIDMap() reads /proc maps strictly", async (t) => {
  await t.step("good", () => {
    assert.deepEqual(parseIDMap("         0          0 4294967295\n", "uid_map"), [
      one(0, 0, 4294967295),
    ]);
    assert.deepEqual(parseIDMap("0 100000 65536\n65536 1000 1\n", "m"), [
      one(0, 100000, 65536),
      one(65536, 1000, 1),
    ]);
  });
  await t.step("empty: an unwritten map", () => {
    assert.deepEqual(parseIDMap("", "m"), []);
  });
  await t.step("malformed, with the line", () => {
    const bad: [string, RegExp][] = [
      [
        "0 1\n",
        /^Cannot parse uid_map of x: line 1: expected "containerID hostID size", got "0 1"$/,
      ],
      ["0 1 2\n0 1 2 3\n", /line 2: .* got "0 1 2 3"$/],
      ["0 -1 2\n", /line 1/],
      ["a b c\n", /line 1/],
      ["0 1 0\n", /line 1/],
      ["0 1 4294967296\n", /line 1/],
      ["4294967296 1 1\n", /line 1/],
      ["0 1 2\n\n", /line 2: .* got ""$/],
    ];
    for (const [text, message] of bad) {
      assert.throws(() => parseIDMap(text, "uid_map of x"), { name: "TypeError", message });
    }
  });
});

Deno.test({
  ...skipUnless("getUserNamespaceMappings() reads /proc/PID/uid_map on the fast path", NO_ID_RANGE),
  async fn(): Promise<void> {
    await using holder = await holdUserns("0 10000 100\n100 20000 5\n", "0 30000 7\n");
    const { result, ops } = await countOps(() =>
      getUserNamespaceMappings(`/proc/${holder.pid}/ns/user`)
    );
    assert.deepEqual(result, {
      uidMappings: [one(0, 10000, 100), one(100, 20000, 5)],
      gidMappings: [one(0, 30000, 7)],
    });
    assert.equal(ops.get("spawn nsenter"), undefined, "no helper on the fast path");
  },
});

mountTest(
  "getUserNamespaceMappings() joins a bind-mounted namespace whose process is gone",
  async (fx) => {
    const file = fx.file("userns");
    {
      await using holder = await holdUserns("0 10000 100\n", "0 30000 7\n5000 40000 3\n");
      mount(`/proc/${holder.pid}/ns/user`, file, null, MS_BIND, null);
      fx.track(file);
    }
    const { result, ops } = await countOps(() => getUserNamespaceMappings(file));
    assert.deepEqual(result, {
      uidMappings: [one(0, 10000, 100)],
      gidMappings: [one(0, 30000, 7), one(5000, 40000, 3)],
    });
    assert.equal(ops.get("spawn nsenter"), 2, "one helper per map, both reaped");
  },
);

mountTest(
  "getUserNamespaceMappings(): a failed read of nsenter's output is a clear error, nsenter is killed and reaped",
  async (fx) => {
    const file = fx.file("userns");
    {
      await using holder = await holdUserns("0 10000 100\n", "0 30000 7\n");
      mount(`/proc/${holder.pid}/ns/user`, file, null, MS_BIND, null);
      fx.track(file);
    }
    let spawned = 0;
    let failed = false;
    setFaultHook((op) => {
      if (spawned === 0 || failed || op !== "read") return undefined;
      failed = true;
      return errnoValue("EIO");
    });
    try {
      await withSpawnHooks(
        { after: () => void spawned++ },
        () =>
          assert.rejects(getUserNamespaceMappings(file), {
            name: "MountError",
            op: "read",
            code: "EIO",
          }),
      );
    } finally {
      setFaultHook(undefined);
    }
    assert.ok(failed);
    // One nsenter per map, run at once; leavesNothing checks that both are
    // reaped, the one whose read failed killed first, and no fd is left.
    assert.equal(spawned, 2);
  },
);

Deno.test({
  name: "getUserNamespaceMappings() reports the helper's stderr when it can't join",
  async fn(): Promise<void> {
    const path = "/proc/999999999/ns/user";
    await assert.rejects(getUserNamespaceMappings(path), (e: unknown) => {
      assert.ok(e instanceof MountError, String(e));
      assert.equal(e.op, "nsenter");
      assert.equal(e.source, path);
      assert.match(
        e.message,
        /^nsenter src=\/proc\/999999999\/ns\/user: cannot read \/proc\/self\/(uid|gid)_map in the user namespace \(exit code 1\): nsenter: .*No such file or directory/,
      );
      return true;
    });
    assert.deepEqual(childPids(), []);
    await assert.rejects(getUserNamespaceMappings("/proc/1/ns/user\0"), { name: "TypeError" });
  },
});

Deno.test("checkIDMaps() refuses map text over the kernel's 4 KiB, before any write", () => {
  // 340 entries of large ids: within the entry limit, over the text limit.
  const big = Array.from({ length: 340 }, (_, i) => one(4000000000 + i * 10, 100000000 + i, 1));
  assert.throws(() => checkIDMaps(big, "m"), {
    name: "TypeError",
    message:
      /^Invalid m: the kernel takes at most 4095 bytes of map text, these 340 entries make \d+$/,
  });
  // The same count of small ids fits.
  checkIDMaps(Array.from({ length: 340 }, (_, i) => one(i, 1000 + i, 1)), "m");
});
