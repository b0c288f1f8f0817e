/**
 * Errors that say what to do: each bare EPERM or EINVAL of making a mount
 * source, in the situation that causes it for real, carries its hint.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { mountFd, MS_BIND, MS_RDONLY } from "../mod.ts";
import { mountTest } from "./_mounts.ts";
import { MODE } from "./_env.ts";
import { simpleMapping } from "./_mappings.ts";
import { readableCopy } from "./_process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ROOTLESS_ONLY = MODE === "rootless" ? undefined : "as root, the kernel allows this";
const ROOT_ONLY = MODE === "root" ? undefined : "needs root, to drop to another user";

mountTest("not privileged at all: the hint names the rootless command", async () => {
  // An ordinary user, in no user namespace of its own, running a copy it can read.
  using copy = readableCopy();
  const cache = Deno.makeTempDirSync({ prefix: "mountfd-cache-" });
  Deno.chmodSync(cache, 0o777);
  const script = `import { mountFd } from "${copy.mod}";
    try {
      await mountFd({ source: "/tmp", destination: "/d", flags: 0x1000 | 1 });
    } catch (error) { console.log(error.message); }`;
  const { stdout, stderr } = await new Deno.Command("runuser", {
    args: ["-u", "nobody", "--", copy.deno, "eval", "--no-check", script],
    env: { DENO_DIR: cache, HOME: "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.removeSync(cache, { recursive: true }));
  assert.equal(
    new TextDecoder().decode(stdout).trim(),
    "open_tree(OPEN_TREE_CLONE) src=/tmp: EPERM: Operation not permitted (making a mount " +
      "needs CAP_SYS_ADMIN over this mount namespace: run as root, or rootless inside " +
      "unshare --user --map-auto --map-root-user --mount)",
    new TextDecoder().decode(stderr),
  );
}, ROOT_ONLY);

mountTest("rootless, id-mapping a filesystem this namespace does not own", async () => {
  // The repository is on a filesystem of the host, mounted outside.
  await assert.rejects(
    mountFd({ source: ROOT, destination: "/d", flags: MS_BIND, idMapping: simpleMapping() }),
    {
      name: "MountError",
      code: "EPERM",
      message: /\(rootless, only a filesystem mounted inside this user namespace can be id-mapped/,
    },
  );
}, ROOTLESS_ONLY);

mountTest("rootless, a non-recursive bind of a tree with locked submounts", async () => {
  await assert.rejects(
    mountFd({ source: "/", destination: "/d", flags: MS_BIND | MS_RDONLY }),
    {
      name: "MountError",
      op: "open_tree(OPEN_TREE_CLONE)",
      code: "EINVAL",
      message: /bind it recursively, with rbind or MS_REC\)$/,
    },
  );
}, ROOTLESS_ONLY);

mountTest("a usernsPath whose namespace has no maps says so", async (fx) => {
  const source = fx.mkdir("src");
  // A user namespace nobody wrote maps for.
  const child = new Deno.Command("unshare", {
    args: ["--user", "--", "sleep", "30"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const usernsPath = `/proc/${child.pid}/ns/user`;
    for (let i = 0; i < 200; i++) {
      if (Deno.readLinkSync(usernsPath) !== Deno.readLinkSync("/proc/self/ns/user")) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await assert.rejects(
      mountFd({ source, destination: "/d", flags: MS_BIND, idMapping: { usernsPath } }),
      {
        name: "MountError",
        op: "mount_setattr(MOUNT_ATTR_IDMAP)",
        code: "EINVAL",
        message: /\(the user namespace has no uid map or gid map: write its uid_map and gid_map/,
      },
    );
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
