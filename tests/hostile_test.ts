/**
 * Hostile input: every bad value gets a TypeError or a MountError with a clear
 * message, and no syscall is made with it. A seeded fuzz sends thousands of
 * random mounts and spec mounts through validateMount, mountFromSpec and
 * mountFd: only those two error types come out, and nothing leaks.
 */

import assert from "node:assert/strict";
import {
  attachMountSource,
  Handles,
  type IDMap,
  type Mapping,
  type Mount,
  MountError,
  mountFd,
  mountFromSpec,
  MS_BIND,
  MS_REC,
  type SpecMount,
  validateMount,
} from "../mod.ts";
import { mountTest } from "./_mounts.ts";
import { countOps } from "./_process.ts";
import { MODE } from "./_env.ts";
import { childPids, newFds, openFds } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";

const ok = { containerID: 0, hostID: 10000, size: 10 };
const withUids = (uidMappings: unknown[]): Mapping =>
  ({ uidMappings, gidMappings: [ok] }) as unknown as Mapping;

const HOSTILE_MAPPINGS: [string, unknown[], RegExp][] = [
  ["negative id", [{ ...ok, hostID: -1 }], /uidMappings\[0\]\.hostID: .* got -1$/],
  ["fractional id", [{ ...ok, containerID: 1.5 }], /containerID: .* got 1\.5$/],
  ["NaN", [{ ...ok, size: NaN }], /size: .* got NaN$/],
  ["Infinity", [{ ...ok, hostID: Infinity }], /hostID: .* got Infinity$/],
  ["id = 2^32", [{ ...ok, hostID: 2 ** 32 }], /hostID: .* got 4294967296$/],
  [
    "id + size = 2^32",
    [{ ...ok, containerID: 2 ** 32 - 10 }],
    /containerID \+ size must be below 2\^32/,
  ],
  ["size 0", [{ ...ok, size: 0 }], /size: expected an integer from 1/],
  ["string id", [{ ...ok, hostID: "10000" }], /hostID: .* got string$/],
  ["bigint id", [{ ...ok, hostID: 10000n }], /hostID: .* got bigint$/],
  ["missing field", [{ containerID: 0, size: 1 }], /hostID: .* got undefined$/],
  [
    "341 entries",
    Array.from({ length: 341 }, (_, i) => ({ containerID: i, hostID: 10000 + i, size: 1 })),
    /at most 340 entries, got 341$/,
  ],
  [
    "overlap",
    [ok, { containerID: 5, hostID: 20000, size: 1 }],
    /entries 0 and 1 overlap in containerID$/,
  ],
  [
    "host overlap",
    [ok, { containerID: 50, hostID: 10009, size: 1 }],
    /entries 0 and 1 overlap in hostID$/,
  ],
  ["empty", [], /needs at least one entry$/],
];

Deno.test("hostile mappings for Handles.get: TypeErrors, and no helper", async (t) => {
  using handles = new Handles();
  for (const [name, uids, message] of HOSTILE_MAPPINGS) {
    await t.step(name, async () => {
      const { ops } = await countOps(() =>
        assert.rejects(handles.get(withUids(uids)), { name: "TypeError", message })
      );
      assert.equal(ops.size, 0);
    });
  }
  for (const bad of [null, undefined, 42, "0:0:1", { uidMappings: [ok] }]) {
    await assert.rejects(handles.get(bad as unknown as Mapping), { name: "TypeError" });
  }
});

mountTest(
  "hostile mounts for mountFd: clear errors, and no syscall with the bad value",
  async (fx) => {
    const src = fx.mkdir("src");
    const file = fx.file("file");
    const bind = (extra: Partial<Mount>): Mount => ({
      source: src,
      destination: "/d",
      flags: MS_BIND,
      ...extra,
    });
    const cases: [string, unknown, RegExp][] = [
      [
        "NUL in source",
        bind({ source: `${src}\0/../etc` }),
        /^Invalid mount\.source: contains a NUL byte/,
      ],
      [
        "NUL in destination",
        bind({ destination: "/d\0x" }),
        /^Invalid mount\.destination: contains a NUL/,
      ],
      [
        "NUL in usernsPath",
        bind({ idMapping: { usernsPath: "/proc/self/ns/user\0" } }),
        /usernsPath: contains a NUL/,
      ],
      [
        "number source",
        bind({ source: 7 as unknown as string }),
        /^Invalid mount\.source: expected a string, got number$/,
      ],
      [
        "object source",
        bind({ source: {} as unknown as string }),
        /expected a string, got object$/,
      ],
      [
        "null destination",
        bind({ destination: null as unknown as string }),
        /destination: expected a string, got null$/,
      ],
      [
        "NaN flags",
        bind({ flags: NaN }),
        /^Invalid mount\.flags: expected an integer of MS_\* bits, got NaN$/,
      ],
      ["fractional flags", bind({ flags: 4096.5 }), /^Invalid mount\.flags/],
      [
        "string usernsPath",
        bind({ idMapping: { usernsPath: 1 as unknown as string } }),
        /usernsPath: expected a string/,
      ],
      ...HOSTILE_MAPPINGS.map(([name, uids, message]): [string, unknown, RegExp] => [
        `mapping: ${name}`,
        bind({ idMapping: withUids(uids) }),
        message,
      ]),
      ["not an object", "mount", /^Invalid mount: expected an object, got string$/],
    ];
    for (const [name, mount, message] of cases) {
      const { ops } = await countOps(() =>
        assert.rejects(mountFd(mount as Mount), (e: unknown) => {
          assert.ok(e instanceof TypeError, `${name}: ${e}`);
          assert.match(e.message, message, name);
          return true;
        })
      );
      assert.equal(ops.size, 0, `${name}: no syscall`);
    }
    // A usernsPath that is not a user namespace is opened and checked, never used.
    for (const usernsPath of [file, "/proc/self/ns/mnt", src]) {
      const { ops } = await countOps(() =>
        assert.rejects(mountFd(bind({ idMapping: { usernsPath } })), {
          name: "MountError",
          op: "open userns",
        })
      );
      assert.equal(ops.has("mount_setattr(MOUNT_ATTR_IDMAP)"), false, usernsPath);
    }
  },
);

mountTest("hostile targets for attachMountSource: TypeErrors before any syscall", async (fx) => {
  using source = await mountFd({ source: fx.mkdir("src"), destination: "/d", flags: MS_BIND });
  for (const target of [`${fx.dir}/x\0y`, 42, null, undefined, {}]) {
    const { ops } = await countOps(() => {
      assert.throws(() => attachMountSource(source, target as string), { name: "TypeError" });
      return Promise.resolve();
    });
    assert.equal(ops.size, 0);
  }
});

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fuzzer(seed: number, src: string): { mount: () => unknown; spec: () => unknown } {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const maybe = <T>(value: () => T): T | undefined => (random() < 0.5 ? value() : undefined);
  const id = (): unknown =>
    pick([0, 1, 1000, 10000, 65535, 4294967294, 4294967295, 2 ** 32, -1, 1.5, NaN, "7", null]);
  const idmap = (): unknown =>
    pick([
      () => ({ containerID: id(), hostID: id(), size: id() }),
      () => ({ containerID: 0, hostID: 10000 + Math.floor(random() * 50) * 100, size: 100 }),
      () => null,
      () => "0 0 1",
    ])();
  const list = (): unknown =>
    pick([() => [idmap()], () => [idmap(), idmap()], () => [], () => undefined, () => "x"])();
  const often = <T>(value: T, other: () => T): T => (random() < 0.6 ? value : other());
  const path = (): unknown =>
    often(
      src,
      () => pick([`${src}/missing`, "relative/dir", "/proc/self", `${src}\0`, "", 42, null]),
    );
  const idMapping = (): unknown =>
    pick([
      () => undefined,
      () => undefined,
      () => simpleMapping(),
      () => ({ uidMappings: list(), gidMappings: list(), recursive: pick([true, false, "y"]) }),
      () => ({ usernsPath: pick(["/proc/self/ns/user", "/proc/self/ns/mnt", path()]) }),
      () => ({ usernsPath: "/proc/self/ns/user", uidMappings: list() }),
      () => ({}),
    ])();
  const mount = (): unknown => ({
    source: path(),
    destination: pick(["/d", "d", "/x\0", 3]),
    flags: pick([MS_BIND, MS_BIND | MS_REC, 0, NaN, -1, 2 ** 40]),
    data: maybe(() => pick(["", "size=1m", "\0"])),
    recAttr: maybe(() => ({
      attrSet: pick([0, 1, 0x100000]),
      attrClr: pick([0, 0x100000]),
      propagation: 0,
    })),
    idMapping: idMapping(),
  });
  const spec = (): unknown => ({
    destination: pick(["/d", "d", "\0", 5]),
    type: maybe(() => pick(["bind", "tmpfs", "\0", 1])),
    source: maybe(path),
    options: maybe(() =>
      Array.from(
        { length: Math.floor(random() * 5) },
        () =>
          pick([
            "ro",
            "rw",
            "rbind",
            "idmap",
            "ridmap",
            "rro",
            "shared",
            "mode=755",
            "\0",
            9,
            "tmpcopyup",
          ]),
      )
    ),
    uidMappings: maybe(list),
    gidMappings: maybe(list),
  });
  return { mount, spec };
}

function documented(error: unknown): boolean {
  return error instanceof TypeError || error instanceof MountError;
}

mountTest("seeded fuzz: only documented errors, and nothing leaks", async (fx) => {
  const src = fx.mkdir("src");
  const seed = 20261129;
  const { mount, spec } = fuzzer(seed, src);
  using handles = new Handles();
  const context = { uidMappings: [ok], gidMappings: [ok] };
  const before = openFds();
  const tally = { ok: 0, TypeError: 0, MountError: 0 };
  const note = (error: unknown) => {
    assert.ok(documented(error), `seed ${seed}: undocumented ${error}`);
    tally[(error as Error).name as "TypeError" | "MountError"]++;
  };
  for (let i = 0; i < 5000; i++) {
    const m = mount() as Mount;
    try {
      validateMount(m, context);
    } catch (error) {
      note(error);
    }
    try {
      (await mountFd(m, { handles })).close();
      tally.ok++;
    } catch (error) {
      note(error);
    }
    const s = spec() as SpecMount;
    try {
      const converted = mountFromSpec(s, context);
      validateMount(converted, context);
      (await mountFd(converted, { handles })).close();
      tally.ok++;
    } catch (error) {
      note(error);
    }
  }
  handles.release();
  assert.deepEqual(newFds(before), [], `seed ${seed}: fds leaked`);
  assert.deepEqual(childPids(), []);
  // Sources carry their flags and recAttr, so bad ones fail in mountFd too.
  assert.ok(
    tally.ok > 100 && tally.TypeError > 500 && tally.MountError > 100,
    JSON.stringify(tally),
  );
  console.log(`fuzz (seed ${seed}, ${MODE}): ${JSON.stringify(tally)}`);
});

Deno.test("IDMap type stays as documented", () => {
  const entry: IDMap = simpleMapping().uidMappings[0];
  assert.deepEqual(Object.keys(entry).sort(), ["containerID", "hostID", "size"]);
});
