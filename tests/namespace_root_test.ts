/**
 * What a target's root is in a namespace call: the root of the namespace's
 * process (`/proc/PID/root`), whether it pivoted or only chrooted; a string
 * root is resolved inside it, magic links refused; mount points made there
 * belong to the container's root.
 */

import assert from "node:assert/strict";
import { O_DIRECTORY, O_PATH } from "../ffi/constants.ts";
import { open } from "../ffi/syscalls.ts";
import { MS_BIND, MS_RDONLY, openMountNamespace, OwnedFd } from "../mod.ts";
import { CONTAINER_USERNS, NO_CONTAINER, startContainer } from "./_container.ts";
import { mountAt } from "./_mountinfo.ts";
import { mountTest } from "./_mounts.ts";

mountTest('a chroot-only container: { root: "/" } is its root, not the host\'s', async (fx) => {
  await using container = await startContainer({ chroot: true });
  const source = fx.mkdir("source");
  fx.file("source/file");
  // A name that exists nowhere on the host, so that a mount there would show.
  const path = `/mountfd-chroot-${crypto.randomUUID()}`;
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  const target = { root: "/", path };
  await ns.mountInto({ source, destination: path, flags: MS_BIND | MS_RDONLY }, target, {
    create: true,
  });
  const { code, stdout } = await container.exec(["cat", `${path}/file`]);
  assert.equal(code, 0);
  assert.equal(stdout, "source/file");
  // Its mountinfo shows mount points from its own root.
  assert.ok(mountAt(path, container.pid), "mounted inside the rootfs");
  assert.throws(() => Deno.statSync(path), Deno.errors.NotFound, "nothing made on the host");
  await ns.unmount(target);
  assert.equal(mountAt(path, container.pid), undefined);
}, NO_CONTAINER);

mountTest("a string root is resolved inside the container: a magic link is refused", async (fx) => {
  await using container = await startContainer({ hostProc: true });
  // The container sees a procfs that shows us: /hostproc/self/root is our root.
  Deno.symlinkSync("/hostproc/self/root", `${container.rootfs}/magic`);
  const source = fx.mkdir("source");
  const made = `/mountfd-magic-${crypto.randomUUID()}`;
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  for (const root of ["/magic", "/hostproc/self/root", "/hostproc/1/root"]) {
    await assert.rejects(
      ns.mountInto({ source, destination: "/x", flags: MS_BIND }, { root, path: `${made}/x` }, {
        create: true,
      }),
      (error: { name: string; code: string; target: string }) =>
        error.name === "MountError" && ["ELOOP", "EACCES"].includes(error.code) &&
        error.target === `${root}:${made}/x`,
      root,
    );
  }
  assert.throws(() => Deno.statSync(made), Deno.errors.NotFound, "nothing made on the host");
  // A plain string root inside the container resolves there.
  await ns.mountInto({ source, destination: "/x", flags: MS_BIND }, {
    root: "/data",
    path: "/sub",
  }, { create: true });
  assert.ok(mountAt("/data/sub", container.pid), "its mountinfo shows it from its root");
  await ns.unmount({ root: "/data", path: "/sub" });
}, NO_CONTAINER);

mountTest("mount points made in a user-namespaced container belong to its root", async (fx) => {
  await using container = await startContainer({ userns: CONTAINER_USERNS });
  const source = fx.mkdir("source");
  const root = CONTAINER_USERNS.uidMappings[0].hostID;
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  const target = { root: "/", path: "/volumes/data" };
  await ns.mountInto({ source, destination: "/volumes/data", flags: MS_BIND }, target, {
    create: true,
  });
  await ns.unmount(target);
  for (const path of ["/volumes", "/volumes/data"]) {
    const { uid, gid } = Deno.lstatSync(`${container.rootfs}${path}`);
    assert.deepEqual([uid, gid], [root, root], path);
  }
  // The container's root can remove what was made for it.
  const { code, stderr } = await container.exec(["rmdir", "/volumes/data", "/volumes"]);
  assert.equal(code, 0, stderr);
}, NO_CONTAINER);

mountTest("a source or target of another namespace than the joined one says so", async (fx) => {
  await using container = await startContainer({ hostProc: true });
  const source = fx.mkdir("source");
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  // A source reached through the caller's /proc/self/root: a mount of the host's namespace.
  await assert.rejects(
    ns.mountFd({
      source: `/hostproc/self/root${source}`,
      destination: "/d",
      flags: MS_BIND | MS_RDONLY, // an open_tree source: a clone of that mount
    }, { sourceIn: "namespace" }),
    {
      code: "EINVAL",
      message: /\(the source is a mount of another mount namespace, .*sourceIn: "caller"\)$/,
    },
  );
  // A target root given as an fd of the caller's: attached there, the kernel refuses.
  using host = new OwnedFd(open(fx.mkdir("host-target"), O_PATH | O_DIRECTORY));
  await assert.rejects(
    ns.mountInto({ source, destination: "/d", flags: MS_BIND }, { root: host, path: "." }),
    { code: "EINVAL", message: /\(the target is a mount of another mount namespace/ },
  );
}, NO_CONTAINER);
