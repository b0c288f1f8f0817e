import assert from "node:assert/strict";
import {
  isBind,
  isIDMapped,
  MS_BIND,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_SHARED,
  stringifyMountFlags,
} from "../mod.ts";

const mapping = {
  uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
  gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
};

Deno.test("isBind() tells bind mounts by MS_BIND", () => {
  assert.equal(isBind({ source: "/a", destination: "/b", flags: MS_BIND }), true);
  assert.equal(isBind({ source: "/a", destination: "/b", flags: MS_BIND | MS_REC }), true);
  assert.equal(isBind({ source: "tmpfs", destination: "/b", flags: 0, device: "tmpfs" }), false);
  assert.equal(isBind({ source: "/a", destination: "/b", flags: MS_REC | MS_RDONLY }), false);
});

Deno.test("isIDMapped() tells id-mapped mounts by idMapping", () => {
  assert.equal(isIDMapped({ source: "/a", destination: "/b", flags: MS_BIND }), false);
  assert.equal(
    isIDMapped({ source: "/a", destination: "/b", flags: MS_BIND, idMapping: mapping }),
    true,
  );
  assert.equal(
    isIDMapped({
      source: "/a",
      destination: "/b",
      flags: MS_BIND,
      idMapping: { usernsPath: "/proc/1/ns/user" },
    }),
    true,
  );
});

Deno.test("stringifyMountFlags() names flags as runc does", async (t) => {
  await t.step("no flags", () => assert.equal(stringifyMountFlags(0), ""));
  await t.step("known flags in runc's order", () => {
    assert.equal(stringifyMountFlags(MS_REC | MS_BIND), "MS_BIND|MS_REC");
    assert.equal(
      stringifyMountFlags(MS_RDONLY | MS_NOSUID | MS_BIND | MS_PRIVATE),
      "MS_RDONLY|MS_NOSUID|MS_BIND|MS_PRIVATE",
    );
    assert.equal(stringifyMountFlags(MS_SHARED), "MS_SHARED");
  });
  await t.step("unknown bits as one hex number", () => {
    assert.equal(stringifyMountFlags(MS_BIND | MS_REC | 0x400000), "MS_BIND|MS_REC|0x400000");
    assert.equal(stringifyMountFlags(0x200 | 0x80000000), "0x80000200");
  });
});
