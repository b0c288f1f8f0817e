import assert from "node:assert/strict";
import {
  type Mount,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_RDONLY,
  MountError,
  mountFromSpec,
  MS_BIND,
  MS_REC,
  validateMount,
} from "../mod.ts";

const range = (containerID: number, hostID: number, size: number) => ({
  containerID,
  hostID,
  size,
});
const lists = { uidMappings: [range(0, 100000, 65536)], gidMappings: [range(0, 100000, 65536)] };
const bind = (extra: Partial<Mount> = {}): Mount => ({
  source: "/srv",
  destination: "/data",
  flags: MS_BIND,
  ...extra,
});

function rejects(mount: Mount, rule: string, context = {}): void {
  assert.throws(() => validateMount(mount, context), (e: unknown) => {
    assert.ok(e instanceof MountError, String(e));
    assert.equal(e.op, "validate");
    assert.equal(e.target, mount.destination);
    assert.equal(e.message, `validate dst=${mount.destination}: ${rule}`);
    return true;
  });
}

Deno.test("valid mounts pass", () => {
  validateMount(bind());
  validateMount(bind({ flags: MS_BIND | MS_REC, idMapping: { ...lists, recursive: true } }));
  validateMount(bind({ idMapping: { usernsPath: "/proc/1/ns/user" } }));
  validateMount({
    source: "tmpfs",
    destination: "/tmp",
    device: "tmpfs",
    flags: 0,
    data: "size=1m",
  });
  validateMount(bind({ recAttr: { attrSet: MOUNT_ATTR_RDONLY, attrClr: 0, propagation: 0 } }));
  // An idmap option with no mappings of its own takes the container's.
  validateMount(bind({ idMapping: {} }), lists);
  validateMount(bind({ idMapping: { recursive: true } }), { usernsPath: "/proc/9/ns/user" });
});

Deno.test("runc's checkIDMapMounts rules, with runc's wording", async (t) => {
  await t.step("an id-mapped mount must be a bind mount", () =>
    rejects(
      { source: "tmpfs", destination: "/tmp", flags: 0, idMapping: lists },
      "id-mapped mounts are only supported for bind-mounts",
    ));
  await t.step("both uid and gid mappings", () => {
    const rule = "id-mapped mounts must have both uid and gid mappings specified";
    rejects(bind({ idMapping: { uidMappings: lists.uidMappings } }), rule);
    rejects(bind({ idMapping: { gidMappings: lists.gidMappings } }), rule);
    rejects(bind({ idMapping: { uidMappings: [], gidMappings: [] } }), rule);
    rejects(bind({ idMapping: {} }), rule);
    rejects(bind({ idMapping: { recursive: true } }), rule, { uidMappings: lists.uidMappings });
  });
  await t.step("a userns path or mappings, not both", () =>
    rejects(
      bind({ idMapping: { usernsPath: "/proc/1/ns/user", ...lists } }),
      "id-mapped mounts cannot have both userns_path and uid and gid mappings specified",
    ));
  await t.step("no MOUNT_ATTR_IDMAP in recAttr", () => {
    const rule = "mount configuration cannot contain recAttr for MOUNT_ATTR_IDMAP";
    rejects(bind({ recAttr: { attrSet: MOUNT_ATTR_IDMAP, attrClr: 0, propagation: 0 } }), rule);
    rejects(bind({ recAttr: { attrSet: 0, attrClr: MOUNT_ATTR_IDMAP, propagation: 0 } }), rule);
  });
});

Deno.test("mapping sanity the kernel would reject later", async (t) => {
  const cases: [string, object, string][] = [
    [
      "size 0",
      { uidMappings: [range(0, 1, 0)], gidMappings: lists.gidMappings },
      "invalid idMapping.uidMappings[0].size: expected an integer from 1 to 4294967295, got 0",
    ],
    [
      "id beyond 32 bits",
      { uidMappings: lists.uidMappings, gidMappings: [range(2 ** 32, 1, 1)] },
      "invalid idMapping.gidMappings[0].containerID: expected an integer from 0 to 4294967294, got 4294967296",
    ],
    [
      "id + size beyond 32 bits",
      { uidMappings: [range(0, 4294967290, 10)], gidMappings: lists.gidMappings },
      "invalid idMapping.uidMappings[0]: hostID + size must be below 2^32, got 4294967300",
    ],
    [
      "container-side overlap",
      { uidMappings: [range(0, 1000, 10), range(9, 5000, 1)], gidMappings: lists.gidMappings },
      "invalid idMapping.uidMappings: entries 0 and 1 overlap in containerID",
    ],
    [
      "host-side overlap",
      { uidMappings: lists.uidMappings, gidMappings: [range(0, 1000, 10), range(50, 1005, 1)] },
      "invalid idMapping.gidMappings: entries 0 and 1 overlap in hostID",
    ],
    [
      "more than 340 entries",
      {
        uidMappings: Array.from({ length: 341 }, (_, i) => range(i, i, 1)),
        gidMappings: lists.gidMappings,
      },
      "invalid idMapping.uidMappings: the kernel takes at most 340 entries, got 341",
    ],
  ];
  for (const [name, idMapping, rule] of cases) {
    await t.step(name, () => rejects(bind({ idMapping }), rule));
  }
});

Deno.test("bind mounts can't carry filesystem data, and the unknown options are named", () => {
  rejects(
    bind({ data: "size=1m" }),
    'bind mounts cannot have any filesystem-specific options applied: "size=1m" ' +
      "(not a known mount option)",
  );
  // A typo of "rbind" is no known option, so it lands in data.
  const typo = mountFromSpec({ destination: "/d", type: "bind", source: "/s", options: ["rbnd"] });
  rejects(
    typo,
    'bind mounts cannot have any filesystem-specific options applied: "rbnd" ' +
      "(not a known mount option)",
  );
});

Deno.test("a relative destination is rejected", () => {
  rejects(bind({ destination: "data" }), "mount destination data is not absolute");
});

Deno.test("non-mounts are TypeErrors", () => {
  assert.throws(() => validateMount(null as unknown as Mount), {
    name: "TypeError",
    message: "Invalid mount: expected an object, got null",
  });
  assert.throws(() => validateMount(bind({ destination: "/a\0" })), {
    name: "TypeError",
    message: /^Invalid mount\.destination: contains a NUL byte/,
  });
});
