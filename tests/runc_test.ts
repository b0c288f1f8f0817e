/**
 * Mounting into containers that a real runtime started: Debian's runc runs
 * a busybox bundle (`runc run -d`), as root and rootless, and the container
 * is checked from inside with `runc exec`.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { MS_BIND, MS_RDONLY, openMountNamespace } from "../mod.ts";
import { CONTAINER_USERNS } from "./_container.ts";
import { MODE } from "./_env.ts";
import { mountsUnder } from "./_mountinfo.ts";
import { hostSource, inside } from "./_inside.ts";
import { mountTest } from "./_mounts.ts";
import { NO_RUNC, NO_TEST_USER, type RuncOptions, startRunc, TEST_USER } from "./_runc.ts";

/** As root, `runc spec`; rootless, `runc spec --rootless`: each with a user namespace. */
const ROOTLESS = MODE === "rootless";

/** The containers: runc's own kind for this mode, and a rootless one of an unprivileged user. */
const CONTAINERS: { name: string; options: RuncOptions; skip?: string }[] = [
  {
    name: `runc${ROOTLESS ? " --rootless" : ""} with a user namespace`,
    options: { rootless: ROOTLESS, userns: CONTAINER_USERNS },
  },
  {
    name: `runc --rootless run by ${TEST_USER ?? "an unprivileged user"}`,
    options: { rootless: true, user: TEST_USER },
    skip: NO_TEST_USER,
  },
];

for (const { name, options, skip } of CONTAINERS) {
  mountTest(
    `${name}: a read-only and an id-mapped volume, in and out again`,
    async (fx) => {
      await using container = await startRunc(options);
      const source = hostSource(fx);
      await using ns = await openMountNamespace(container.nsPath("mnt"));
      const ro = { root: "/", path: "/vol/ro" };
      const mapped = { root: "/", path: "/vol/mapped" };
      await ns.mountInto({ source, destination: ro.path, flags: MS_BIND | MS_RDONLY }, ro, {
        create: true,
      });
      await ns.mountInto(
        {
          source,
          destination: mapped.path,
          flags: MS_BIND,
          idMapping: { usernsPath: container.nsPath("user") },
        },
        mapped,
        { create: true },
      );
      const write = await container.exec(["sh", "-c", "echo x >/vol/ro/file"]);
      assert.notEqual(write.code, 0, "a write to the read-only volume fails");
      assert.match(write.stderr, /Read-only file system/);
      // Our 0 is nobody in the container, but its root through its own mapping.
      const owners = await inside(container, [
        "stat",
        "-c",
        "%u:%g",
        "/vol/ro/file",
        "/vol/mapped/file",
      ]);
      assert.equal(owners, "65534:65534\n0:0\n");
      // What its root writes there is ours on disk.
      await inside(container, ["sh", "-c", "echo new >/vol/mapped/new"]);
      assert.deepEqual([Deno.statSync(`${source}/new`).uid, Deno.statSync(`${source}/new`).gid], [
        0,
        0,
      ]);

      await ns.unmount(ro);
      await ns.unmount(mapped);
      assert.deepEqual(mountsUnder("/vol", container.pid), [], "both unmounted");
      assert.equal(
        await inside(container, ["ls", "/vol/ro"]),
        "",
        "the mount point is left, empty",
      );
    },
    NO_RUNC,
    skip,
  );

  mountTest(
    `${name}: the mount points made for it are its root's, who removes them`,
    async (fx) => {
      await using container = await startRunc(options);
      const source = hostSource(fx);
      await using ns = await openMountNamespace(container.nsPath("mnt"));
      const target = { root: "/", path: "/made/here" };
      await ns.mountInto({ source, destination: target.path, flags: MS_BIND }, target, {
        create: true,
      });
      await ns.unmount(target);
      // As runc makes them: owned by the ids that are 0 in the container.
      const owners = await inside(container, ["stat", "-c", "%u:%g", "/made", "/made/here"]);
      assert.equal(owners, "0:0\n0:0\n");
      await inside(container, ["rmdir", "/made/here", "/made"]);
    },
    NO_RUNC,
    skip,
  );
}

const TOOL = fileURLToPath(new URL("../examples/container_mounts.ts", import.meta.url));

/** A createRuntime hook: container-mounts --rootfs CONFIG PID, the pid read from runc's state. */
const HOOK = `pid=$(sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p')
exec "$1" run --allow-ffi --allow-run=unshare --allow-read "$2" --rootfs "$3" "$pid" >"$4" 2>&1`;

mountTest(
  `runc${ROOTLESS ? " --rootless" : ""}: container-mounts --rootfs as its createRuntime hook`,
  async (fx) => {
    const volume = hostSource(fx);
    const log = `${fx.dir}/hook.log`;
    const denoDir = fx.mkdir("deno-dir");
    let bundle = "";
    await using container = await startRunc({
      rootless: ROOTLESS,
      userns: CONTAINER_USERNS,
      mounts: [{ destination: "/srv", type: "bind", source: volume, options: ["rbind"] }],
      prepare(config, dir): void {
        bundle = dir;
        // runc's own mounts, and one more: only that one is the hook's to make.
        const mounts = [
          ...config.mounts as unknown[],
          { destination: "/vol/deep", type: "bind", source: volume, options: ["rbind", "ro"] },
        ];
        Deno.writeTextFileSync(`${dir}/volumes.json`, JSON.stringify({ ...config, mounts }));
        const args = ["sh", "-c", HOOK, "sh", Deno.execPath(), TOOL, `${dir}/volumes.json`, log];
        const env = [`DENO_DIR=${denoDir}`, `HOME=${fx.dir}`, `PATH=${Deno.env.get("PATH")}`];
        config.hooks = { createRuntime: [{ path: "/bin/sh", args, env }] };
      },
    });
    const config = JSON.parse(Deno.readTextFileSync(`${bundle}/volumes.json`));
    const lines = Deno.readTextFileSync(log).trim().split("\n");
    // Before pivot_root, runc's mounts are there, under the rootfs path.
    assert.equal(lines.length, config.mounts.length, lines.join("\n"));
    assert.deepEqual(lines.slice(-2), [
      `skip   ${bundle}/rootfs/srv: already a mount point in the container ` +
      "(--replace stacks on it)",
      `ok     ${bundle}/rootfs/vol/deep <- ${volume} (rbind,ro)`,
    ]);
    assert.ok(lines.slice(0, -2).every((line) => line.startsWith("skip   ")), lines.join("\n"));
    assert.equal(await inside(container, ["cat", "/vol/deep/file"]), "host-src/file");
    const write = await container.exec(["sh", "-c", "echo x >/vol/deep/file"]);
    assert.match(write.stderr, /Read-only file system/);
    // Made as runc makes its mount points: the container's root's.
    assert.equal(await inside(container, ["stat", "-c", "%u:%g", "/vol"]), "0:0\n");
  },
  NO_RUNC,
);
