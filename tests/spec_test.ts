import assert from "node:assert/strict";
import {
  EXT_COPYUP,
  KNOWN_MOUNT_OPTIONS,
  type Mount,
  MOUNT_ATTR__ATIME,
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NODIRATIME,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_NOSYMFOLLOW,
  MOUNT_ATTR_RDONLY,
  MOUNT_ATTR_RELATIME,
  MOUNT_ATTR_STRICTATIME,
  mountFromSpec,
  MS_BIND,
  MS_DIRSYNC,
  MS_I_VERSION,
  MS_LAZYTIME,
  MS_MANDLOCK,
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
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
  type SpecMount,
} from "../mod.ts";

const from = (options: string[], extra: Partial<SpecMount> = {}): Mount =>
  mountFromSpec({ destination: "/d", source: "/s", options, ...extra });

// Each pair: the option that sets the flag, the one that clears it, the bits.
const FLAG_PAIRS: [string, string, number][] = [
  ["ro", "rw", MS_RDONLY],
  ["nosuid", "suid", MS_NOSUID],
  ["nodev", "dev", MS_NODEV],
  ["noexec", "exec", MS_NOEXEC],
  ["sync", "async", MS_SYNCHRONOUS],
  ["noatime", "atime", MS_NOATIME],
  ["nodiratime", "diratime", MS_NODIRATIME],
  ["relatime", "norelatime", MS_RELATIME],
  ["strictatime", "nostrictatime", MS_STRICTATIME],
  ["nosymfollow", "symfollow", MS_NOSYMFOLLOW],
  ["mand", "nomand", MS_MANDLOCK],
  ["iversion", "noiversion", MS_I_VERSION],
  ["lazytime", "nolazytime", MS_LAZYTIME],
  ["silent", "loud", MS_SILENT],
];

Deno.test("flag options set and clear MS_* bits, both ways round", async (t) => {
  for (const [set, clear, bits] of FLAG_PAIRS) {
    await t.step(`${set} / ${clear}`, () => {
      const on = from([set]);
      assert.equal(on.flags, bits);
      assert.equal(on.clearedFlags, undefined);
      const off = from([clear]);
      assert.equal(off.flags, 0);
      assert.equal(off.clearedFlags, bits);
      const onThenOff = from([set, clear]);
      assert.equal(onThenOff.flags & bits, 0);
      assert.equal(onThenOff.clearedFlags, bits);
      const offThenOn = from([clear, set]);
      assert.equal(offThenOn.flags & bits, bits);
      assert.equal(offThenOn.clearedFlags, undefined);
    });
  }
});

Deno.test("flag options that only set bits", () => {
  assert.equal(from(["bind"]).flags, MS_BIND);
  assert.equal(from(["rbind"]).flags, MS_BIND | MS_REC);
  assert.equal(from(["remount"]).flags, MS_REMOUNT);
  assert.equal(from(["dirsync"]).flags, MS_DIRSYNC);
  assert.equal(from(["defaults"]).flags, 0);
  assert.equal(from(["defaults"]).data, undefined, "defaults is no filesystem data");
  assert.equal(
    from(["ro", "nosuid", "nodev", "rbind"]).flags,
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_BIND | MS_REC,
  );
});

Deno.test("propagation options go to propagationFlags, in order", () => {
  const cases: [string, number][] = [
    ["private", MS_PRIVATE],
    ["rprivate", MS_PRIVATE | MS_REC],
    ["slave", MS_SLAVE],
    ["rslave", MS_SLAVE | MS_REC],
    ["shared", MS_SHARED],
    ["rshared", MS_SHARED | MS_REC],
    ["unbindable", MS_UNBINDABLE],
    ["runbindable", MS_UNBINDABLE | MS_REC],
  ];
  for (const [option, flags] of cases) {
    const mount = from([option]);
    assert.deepEqual(mount.propagationFlags, [flags], option);
    assert.equal(mount.flags, 0, option);
  }
  assert.deepEqual(from(["rbind", "rslave", "shared"]).propagationFlags, [
    MS_SLAVE | MS_REC,
    MS_SHARED,
  ]);
});

Deno.test("recursive attribute options go to recAttr, both ways round", async (t) => {
  const pairs: [string, string, number][] = [
    ["rro", "rrw", MOUNT_ATTR_RDONLY],
    ["rnosuid", "rsuid", MOUNT_ATTR_NOSUID],
    ["rnodev", "rdev", MOUNT_ATTR_NODEV],
    ["rnoexec", "rexec", MOUNT_ATTR_NOEXEC],
    ["rnodiratime", "rdiratime", MOUNT_ATTR_NODIRATIME],
    ["rnosymfollow", "rsymfollow", MOUNT_ATTR_NOSYMFOLLOW],
  ];
  for (const [set, clear, bits] of pairs) {
    await t.step(`${set} / ${clear}`, () => {
      assert.deepEqual(from([set]).recAttr, { attrSet: bits, attrClr: 0, propagation: 0 });
      assert.deepEqual(from([clear]).recAttr, { attrSet: 0, attrClr: bits, propagation: 0 });
      assert.deepEqual(from([set, clear]).recAttr, { attrSet: 0, attrClr: bits, propagation: 0 });
      assert.deepEqual(from([clear, set]).recAttr, { attrSet: bits, attrClr: 0, propagation: 0 });
    });
  }
  // Access-time settings also clear MOUNT_ATTR__ATIME, as mount_setattr(2) requires.
  const atime: [string, string, number][] = [
    ["rnoatime", "ratime", MOUNT_ATTR_NOATIME],
    ["rstrictatime", "rnostrictatime", MOUNT_ATTR_STRICTATIME],
  ];
  for (const [set, clear, bits] of atime) {
    await t.step(`${set} / ${clear}`, () => {
      assert.deepEqual(from([set]).recAttr, {
        attrSet: bits,
        attrClr: MOUNT_ATTR__ATIME,
        propagation: 0,
      });
      assert.deepEqual(from([clear]).recAttr, {
        attrSet: 0,
        attrClr: bits | MOUNT_ATTR__ATIME,
        propagation: 0,
      });
    });
  }
  await t.step("rrelatime / rnorelatime", () => {
    // MOUNT_ATTR_RELATIME is 0: only the clearing of the access-time field remains.
    assert.equal(MOUNT_ATTR_RELATIME, 0);
    assert.deepEqual(from(["rrelatime"]).recAttr, {
      attrSet: 0,
      attrClr: MOUNT_ATTR__ATIME,
      propagation: 0,
    });
    assert.deepEqual(from(["rnorelatime"]).recAttr, {
      attrSet: 0,
      attrClr: MOUNT_ATTR__ATIME,
      propagation: 0,
    });
  });
  assert.equal(from(["ro"]).recAttr, undefined);
});

Deno.test("tmpcopyup goes to extensions, unknown options to data", () => {
  assert.equal(from(["tmpcopyup"]).extensions, EXT_COPYUP);
  const mount = mountFromSpec({
    destination: "/tmp",
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", "mode=755", "size=65536k", "tmpcopyup"],
  });
  assert.equal(mount.data, "mode=755,size=65536k");
  assert.equal(mount.flags, MS_NOSUID);
  assert.equal(mount.device, "tmpfs");
});

Deno.test("bind mounts: options and type bind mark them, device becomes bind", () => {
  assert.equal(from(["bind"]).device, "bind");
  assert.equal(from(["rbind"], { type: "none" }).device, "bind");
  const typed = mountFromSpec({ destination: "/d", type: "bind", source: "/s" });
  assert.equal(typed.flags, MS_BIND);
  assert.equal(typed.device, "bind");
  assert.equal(mountFromSpec({ destination: "/proc", type: "proc", source: "proc" }).flags, 0);
});

Deno.test("relative bind sources resolve against context.cwd", () => {
  assert.equal(from(["bind"], { source: "data" }).source, "data");
  assert.equal(
    mountFromSpec({ destination: "/d", source: "data", options: ["bind"] }, { cwd: "/bundle/" })
      .source,
    "/bundle/data",
  );
  assert.equal(
    mountFromSpec({ destination: "/d", source: "/abs", options: ["bind"] }, { cwd: "/bundle" })
      .source,
    "/abs",
  );
});

const uids = [{ containerID: 0, hostID: 100000, size: 65536 }];
const gids = [{ containerID: 0, hostID: 200000, size: 65536 }];

Deno.test("idmap and ridmap id-map the mount with its own mappings", () => {
  const idmap = from(["rbind", "idmap"], { uidMappings: uids, gidMappings: gids });
  assert.deepEqual(idmap.idMapping, { recursive: false, uidMappings: uids, gidMappings: gids });
  const ridmap = from(["rbind", "ridmap"], { uidMappings: uids, gidMappings: gids });
  assert.deepEqual(ridmap.idMapping, { recursive: true, uidMappings: uids, gidMappings: gids });
  assert.notEqual(ridmap.idMapping?.uidMappings, uids, "the mappings are copied");
});

Deno.test("explicit mappings id-map a mount even without the option", () => {
  assert.deepEqual(from(["bind"], { uidMappings: uids, gidMappings: gids }).idMapping, {
    uidMappings: uids,
    gidMappings: gids,
  });
  // Only one list: left for validateMount to refuse.
  assert.deepEqual(from(["bind"], { uidMappings: uids }).idMapping, { uidMappings: uids });
});

Deno.test("an idmap option without mappings takes the container's", () => {
  const context = { uidMappings: uids, gidMappings: gids };
  assert.deepEqual(
    mountFromSpec({ destination: "/d", source: "/s", options: ["bind", "idmap"] }, context)
      .idMapping,
    {
      recursive: false,
      uidMappings: uids,
      gidMappings: gids,
    },
  );
  const joined = { ...context, usernsPath: "/proc/42/ns/user" };
  assert.deepEqual(
    mountFromSpec({ destination: "/d", source: "/s", options: ["bind", "ridmap"] }, joined)
      .idMapping,
    {
      recursive: true,
      usernsPath: "/proc/42/ns/user",
    },
  );
  // The mount's own mappings win over the container's.
  const own = [{ containerID: 0, hostID: 5, size: 1 }];
  assert.deepEqual(
    mountFromSpec(
      {
        destination: "/d",
        source: "/s",
        options: ["bind", "idmap"],
        uidMappings: own,
        gidMappings: own,
      },
      joined,
    ).idMapping,
    { recursive: false, uidMappings: own, gidMappings: own },
  );
  // No context: an id-mapped mount with no mappings, for validateMount to refuse.
  assert.deepEqual(from(["bind", "idmap"]).idMapping, { recursive: false });
});

Deno.test("every known option is handled, and none lands in data", () => {
  for (const option of KNOWN_MOUNT_OPTIONS) {
    assert.equal(from([option]).data, undefined, option);
  }
  assert.equal(KNOWN_MOUNT_OPTIONS.length, 33 + 8 + 18 + 1 + 2);
});

Deno.test("malformed spec mounts are TypeErrors naming the field", () => {
  const bad: [unknown, RegExp][] = [
    [null, /^Invalid spec mount: expected an object, got null$/],
    [{ destination: 1 }, /^Invalid spec\.destination: expected a string, got number$/],
    [{ destination: "/d\0" }, /^Invalid spec\.destination: contains a NUL byte/],
    [{ destination: "/d", source: "/s\0" }, /^Invalid spec\.source: contains a NUL byte/],
    [{ destination: "/d", type: "\0" }, /^Invalid spec\.type: contains a NUL byte/],
    [
      { destination: "/d", options: "ro" },
      /^Invalid spec\.options: expected an array, got string$/,
    ],
    [{ destination: "/d", options: ["ro", 7] }, /^Invalid spec\.options\[1\]: expected a string/],
    [{ destination: "/d", options: ["mode=7\0"] }, /^Invalid spec\.options\[0\]: contains a NUL/],
    [{ destination: "/d", uidMappings: {} }, /^Invalid spec\.uidMappings: expected an array/],
    [{ destination: "/d", gidMappings: [3] }, /^Invalid spec\.gidMappings\[0\]: expected/],
  ];
  for (const [spec, message] of bad) {
    assert.throws(() => mountFromSpec(spec as SpecMount), { name: "TypeError", message });
  }
});

Deno.test("relative bind sources are joined and cleaned, as runc's filepath.Join", () => {
  const source = (cwd: string, rel: string) =>
    mountFromSpec({ destination: "/d", source: rel, options: ["bind"] }, { cwd }).source;
  assert.equal(source("/bundle", "./data//sub/"), "/bundle/data/sub");
  assert.equal(source("/bundle/", "../other/./x"), "/other/x");
  assert.equal(source("/b", "../../../../etc"), "/etc");
  assert.equal(source("/b", "."), "/b");
});

Deno.test("crun's idmap=uids=...;gids=... gives the mount mappings of its own", async (t) => {
  const spec = (option: string): SpecMount => ({
    destination: "/d",
    type: "bind",
    source: "/s",
    options: ["rbind", option],
  });
  await t.step("absolute ranges, several with #", () => {
    const mount = mountFromSpec(spec("idmap=uids=0-1-10#10-11-10;gids=0-100-10"));
    assert.deepEqual(mount.idMapping, {
      recursive: false,
      uidMappings: [
        { containerID: 0, hostID: 1, size: 10 },
        { containerID: 10, hostID: 11, size: 10 },
      ],
      gidMappings: [{ containerID: 0, hostID: 100, size: 10 }],
    });
    assert.equal(mountFromSpec(spec("ridmap=uids=0-1-1;gids=0-1-1")).idMapping?.recursive, true);
  });
  await t.step("@ is relative to the container's user namespace (crun(1)'s example)", () => {
    const context = {
      uidMappings: [
        { containerID: 0, hostID: 0, size: 1 },
        { containerID: 1, hostID: 2, size: 1000 },
      ],
      gidMappings: [{ containerID: 0, hostID: 5000, size: 100 }],
    };
    const mount = mountFromSpec(spec("idmap=uids=@1-3-10;gids=@0-0-1"), context);
    assert.deepEqual(mount.idMapping?.uidMappings, [{ containerID: 1, hostID: 4, size: 10 }]);
    assert.deepEqual(mount.idMapping?.gidMappings, [{ containerID: 0, hostID: 5000, size: 1 }]);
  });
  await t.step("bad forms are TypeErrors naming the option", () => {
    for (
      const [option, message] of [
        ["idmap=uids=0-1", /options\[1\]: expected uids ranges as \[@\]containerID-hostID-size/],
        ["idmap=users=0-1-1", /options\[1\]: expected uids=\.\.\.;gids=\.\.\. after idmap=/],
        ["idmap=uids=@5-5-1", /relative to the container's uids, but its mappings are not given/],
      ] as const
    ) {
      assert.throws(() => mountFromSpec(spec(option)), { name: "TypeError", message });
    }
  });
});
