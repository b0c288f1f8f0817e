import assert from "node:assert/strict";
import { mount } from "./_syscalls.ts";
import {
  type Mount,
  MOUNT_ATTR__ATIME,
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_NOSYMFOLLOW,
  MOUNT_ATTR_RDONLY,
  mountInto,
  MS_BIND,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_SHARED,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_UNBINDABLE,
} from "../mod.ts";
import { flagsToAttr, statfsToMountFlags } from "../lib/flags.ts";
import { mountAt, mountsUnder, propagation } from "./_mountinfo.ts";
import { type Fixture, owner } from "./_fixture.ts";
import {
  at,
  bindMount,
  eachKind,
  makeSource,
  options,
  recAttr,
  SOURCE_FLAGS,
  type SourceOptions,
  target,
} from "./_mount_into.ts";

const FLAG_CASES: [string, number, string[]][] = [
  ["MS_RDONLY", MS_RDONLY, ["ro", "relatime"]],
  ["MS_NOSUID", MS_NOSUID, ["nosuid", "relatime", "rw"]],
  ["MS_NODEV", MS_NODEV, ["nodev", "relatime", "rw"]],
  ["MS_NOEXEC", MS_NOEXEC, ["noexec", "relatime", "rw"]],
  ["MS_NOATIME", MS_NOATIME, ["noatime", "rw"]],
  ["MS_STRICTATIME", MS_STRICTATIME, ["rw"]],
  ["MS_RELATIME", MS_RELATIME, ["relatime", "rw"]],
  ["MS_NODIRATIME", MS_NODIRATIME, ["nodiratime", "relatime", "rw"]],
  ["MS_NOSYMFOLLOW", MS_NOSYMFOLLOW, ["nosymfollow", "relatime", "rw"]],
  [
    "all of them",
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_NOSYMFOLLOW,
    ["noatime", "nodev", "nodiratime", "noexec", "nosuid", "nosymfollow", "ro"],
  ],
];

eachKind("every flag shows in mountinfo", async (fx, idMapping) => {
  const src = makeSource(fx);
  for (const [i, [name, flags, expected]] of FLAG_CASES.entries()) {
    const t = target(fx, `t${i}`);
    await mountInto(bindMount(src, idMapping, { flags: MS_BIND | flags }), t);
    const info = at(t);
    assert.deepEqual(options(info), expected.toSorted(), name);
    assert.equal(info.options.includes("idmapped"), idMapping !== undefined, name);
  }
});

eachKind("flags are set as a bind remount sets them", async (fx, idMapping) => {
  const src = makeSource(fx, { flags: SOURCE_FLAGS });
  const cases: [string, Partial<Mount>, string[]][] = [
    ["a bare bind keeps the source's flags", {}, ["noatime", "nodev", "nosuid", "rw"]],
    ["MS_REC alone is no flag", { flags: MS_BIND | MS_REC }, ["noatime", "nodev", "nosuid", "rw"]],
    ["flags given replace the others, the atime setting stays", {
      flags: MS_BIND | MS_RDONLY,
    }, ["noatime", "ro"]],
    ["clearedFlags alone makes a remount", { clearedFlags: MS_RDONLY }, ["noatime", "rw"]],
    ["an atime flag resets the atime setting (runc's rule)", {
      flags: MS_BIND | MS_NODIRATIME,
    }, ["nodiratime", "relatime", "rw"]],
    ["strictatime wins over noatime, as in mount(2)", {
      flags: MS_BIND | MS_NOATIME | MS_STRICTATIME,
    }, ["rw"]],
  ];
  for (const [i, [name, extra, expected]] of cases.entries()) {
    const t = target(fx, `t${i}`);
    await mountInto(bindMount(src, idMapping, extra), t);
    assert.deepEqual(options(at(t)), expected, name);
  }
});

eachKind("a read-only mount refuses writes", async (fx, idMapping) => {
  const src = makeSource(fx);
  const t = target(fx);
  await mountInto(bindMount(src, idMapping, { flags: MS_BIND | MS_RDONLY }), t);
  assert.throws(() => Deno.writeTextFileSync(`${t}/file`, "y"), /Read-only file system/);
  assert.equal(owner(`${t}/file`), idMapping ? "10000:10000" : "0:0");
  Deno.writeTextFileSync(`${src}/file`, "y");
});

/** A shared mount at fx/par with a peer at fx/peer. */
function sharedParent(fx: Fixture): { par: string; peer: string } {
  const par = fx.mkdir("par");
  mount(par, par, null, MS_BIND, null);
  fx.track(par);
  mount(null, par, null, MS_SHARED, null);
  const peer = fx.mkdir("peer");
  mount(par, peer, null, MS_BIND, null);
  fx.track(peer);
  return { par, peer };
}

const PROPAGATION_CASES: [string, SourceOptions, boolean, number[], string][] = [
  ["MS_SHARED", {}, false, [MS_SHARED], "shared"],
  ["MS_UNBINDABLE", {}, false, [MS_UNBINDABLE], "unbindable"],
  ["no propagation: a private source gives a private mount", {}, false, [], "private"],
  ["no propagation: a shared source gives a peer", { shared: true }, false, [], "shared"],
  ["MS_SLAVE of a shared source", { shared: true }, false, [MS_SLAVE], "slave"],
  ["MS_PRIVATE of a shared source", { shared: true }, false, [MS_PRIVATE], "private"],
  ["MS_SHARED then MS_SLAVE", {}, false, [MS_SHARED, MS_SLAVE], "private"],
  ["no propagation under a shared parent", {}, true, [], "shared"],
  ["MS_PRIVATE under a shared parent", {}, true, [MS_PRIVATE], "private"],
  ["MS_UNBINDABLE under a shared parent", {}, true, [MS_UNBINDABLE], "unbindable"],
];

for (const [name, sourceOptions, parentShared, propagationFlags, expected] of PROPAGATION_CASES) {
  eachKind(`propagation: ${name}`, async (fx, idMapping) => {
    const src = makeSource(fx, sourceOptions);
    const parent = parentShared ? sharedParent(fx) : undefined;
    const t = parent ? fx.mkdir("par/t") : target(fx);
    if (parent) fx.track(t);
    await mountInto(bindMount(src, idMapping, { propagationFlags }), t);
    assert.equal(propagation(at(t)), expected);
    if (parent) {
      // The attach propagated a copy to the parent's peer, as any mount does.
      fx.track(`${parent.peer}/t`);
      assert.ok(mountAt(`${parent.peer}/t`), "a copy in the peer");
    }
  });
}

eachKind("propagation with MS_REC reaches submounts", async (fx, idMapping) => {
  const src = makeSource(fx, { shared: true, sub: true });
  const flags = MS_BIND | MS_REC;
  const top = target(fx, "top");
  await mountInto(bindMount(src, idMapping, { flags, propagationFlags: [MS_PRIVATE] }), top);
  assert.deepEqual(mountsUnder(top).map(propagation), ["private", "shared"]);
  const rec = target(fx, "rec");
  await mountInto(
    bindMount(src, idMapping, { flags, propagationFlags: [MS_REC | MS_PRIVATE] }),
    rec,
  );
  assert.deepEqual(mountsUnder(rec).map(propagation), ["private", "private"]);
});

const REC_ATTR_CASES: [string, Partial<Mount>, string[][], string[]?][] = [
  ["rro", { recAttr: recAttr(MOUNT_ATTR_RDONLY) }, [["ro", "relatime"], ["ro", "relatime"]]],
  [
    "rnosuid,rnodev,rnoexec,rnosymfollow",
    { recAttr: recAttr(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC) },
    [["nodev", "noexec", "nosuid", "relatime", "rw"], [
      "nodev",
      "noexec",
      "nosuid",
      "relatime",
      "rw",
    ]],
  ],
  ["rnosymfollow", { recAttr: recAttr(MOUNT_ATTR_NOSYMFOLLOW) }, [
    ["nosymfollow", "relatime", "rw"],
    ["nosymfollow", "relatime", "rw"],
  ]],
  ["rnoatime, without MOUNT_ATTR__ATIME in attrClr (added, runc's rule)", {
    recAttr: recAttr(MOUNT_ATTR_NOATIME),
  }, [["noatime", "rw"], ["noatime", "rw"]]],
  ["rrelatime", { recAttr: recAttr(0, MOUNT_ATTR__ATIME) }, [["relatime", "rw"], [
    "relatime",
    "rw",
  ]]],
  ["rrw after ro: recAttr comes after the flags", {
    flags: MS_BIND | MS_REC | MS_RDONLY,
    recAttr: recAttr(0, MOUNT_ATTR_RDONLY),
  }, [["relatime", "rw"], ["relatime", "rw"]]],
  ["ro on the top mount only, without recAttr", { flags: MS_BIND | MS_REC | MS_RDONLY }, [
    ["ro", "relatime"],
    ["relatime", "rw"],
  ]],
  [
    "recursive shared propagation",
    { recAttr: recAttr(0, 0, MS_SHARED) },
    [["relatime", "rw"], ["relatime", "rw"]],
    ["shared", "shared"],
  ],
];

for (const [name, extra, expected, expectedPropagation] of REC_ATTR_CASES) {
  eachKind(`recAttr: ${name}`, async (fx, idMapping) => {
    const src = makeSource(fx, { sub: true });
    const t = target(fx);
    fx.track(`${t}/sub`);
    await mountInto(bindMount(src, idMapping, { flags: MS_BIND | MS_REC, ...extra }), t);
    const mounts = mountsUnder(t);
    assert.deepEqual(mounts.map(options), expected.map((e) => e.toSorted()));
    if (expectedPropagation) assert.deepEqual(mounts.map(propagation), expectedPropagation);
  });
}

Deno.test("flagsToAttr() gives the attributes of a bind remount", () => {
  // Everything not given is cleared; the atime setting only with an atime flag.
  assert.deepEqual(flagsToAttr(MS_RDONLY), {
    attrSet: MOUNT_ATTR_RDONLY,
    attrClr: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW,
  });
  const { attrSet, attrClr } = flagsToAttr(MS_NOATIME | MS_NODIRATIME);
  assert.equal(attrSet, MOUNT_ATTR_NOATIME | 0x80);
  assert.equal(attrClr! & MOUNT_ATTR__ATIME, MOUNT_ATTR__ATIME);
  assert.equal(flagsToAttr(MS_RELATIME).attrClr! & 0x80, 0x80, "nodiratime is reset too");
});

Deno.test("statfsToMountFlags() names strictatime, which statfs does not report", () => {
  assert.equal(statfsToMountFlags(0x1 | 0x2 | 0x1000), MS_RDONLY | MS_NOSUID | MS_RELATIME);
  assert.equal(statfsToMountFlags(0x400), MS_NOATIME);
  assert.equal(statfsToMountFlags(0), MS_STRICTATIME);
  assert.equal(statfsToMountFlags(0x2000), MS_NOSYMFOLLOW | MS_STRICTATIME);
});
