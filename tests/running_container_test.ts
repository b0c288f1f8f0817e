/**
 * Mounting into a running container: a real process that has pivoted into
 * its rootfs, in mount and pid namespaces of its own (and a user namespace,
 * for the id-map cases). Every mount is checked from the container's side.
 */

import assert from "node:assert/strict";
import {
  attachMountSource,
  MountError,
  mountFd,
  mountInto,
  MS_BIND,
  MS_NOSUID,
  MS_RDONLY,
  openMountNamespace,
} from "../mod.ts";
import { type Container, CONTAINER_USERNS, NO_CONTAINER, startContainer } from "./_container.ts";
import { mountAt } from "./_mountinfo.ts";
import { hostSource, inside } from "./_inside.ts";
import { mountTest } from "./_mounts.ts";
import { MODE } from "./_env.ts";
import { simpleMapping } from "./_mappings.ts";

/** The per-mount options of the mount at `path`, as the container sees it. */
function optionsInside(container: Container, path: string): string[] | undefined {
  return mountAt(path, container.pid)?.options;
}

mountTest("a read-only host directory into a running container", async (fx) => {
  await using container = await startContainer();
  const source = hostSource(fx);
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  await ns.mountInto(
    { source, destination: "/data2", flags: MS_BIND | MS_RDONLY },
    { root: "/", path: "/data2" },
    { create: true },
  );
  assert.equal(await inside(container, ["cat", "/data2/file"]), "host-src/file");
  const write = await container.exec(["sh", "-c", "echo x >/data2/file"]);
  assert.notEqual(write.code, 0, "a write fails inside");
  assert.match(write.stderr, /Read-only file system/);
  assert.ok(optionsInside(container, "/data2")?.includes("ro"));
  assert.equal(mountAt(`${container.rootfs}/data2`), undefined, "nothing here");
  await ns.unmount({ root: "/", path: "/data2" });
  assert.equal(optionsInside(container, "/data2"), undefined, "unmounted again");
}, NO_CONTAINER);

mountTest(
  "id-mapped into a running container, by mappings and by its user namespace",
  async (fx) => {
    await using container = await startContainer({ userns: CONTAINER_USERNS });
    const source = hostSource(fx);
    await using ns = await openMountNamespace(container.nsPath("mnt"));
    // Not id-mapped, a file of our 0 is nobody's in the container.
    await ns.mountInto({ source, destination: "/plain", flags: MS_BIND }, {
      root: "/",
      path: "/plain",
    }, { create: true });
    assert.equal(await inside(container, ["stat", "-c", "%u:%g", "/plain/file"]), "65534:65534\n");
    // With the container's own user namespace, it is the container's root's.
    await ns.mountInto(
      {
        source,
        destination: "/mapped",
        flags: MS_BIND,
        idMapping: { usernsPath: container.nsPath("user") },
      },
      { root: "/", path: "/mapped" },
      { create: true },
    );
    assert.equal(await inside(container, ["stat", "-c", "%u:%g", "/mapped/file"]), "0:0\n");
    // With explicit mappings: our 0 on disk shows as our BASE, 10000 for us.
    const mapping = simpleMapping();
    await ns.mountInto({ source, destination: "/explicit", flags: MS_BIND, idMapping: mapping }, {
      root: "/",
      path: "/explicit",
    }, { create: true });
    // In the container, that is 10000 less its base, or nobody if outside its range.
    const { hostID, size } = CONTAINER_USERNS.uidMappings[0];
    const expected = 10000 >= hostID && 10000 < hostID + size ? 10000 - hostID : 65534;
    assert.equal(
      await inside(container, ["stat", "-c", "%u:%g", "/explicit/file"]),
      `${expected}:${expected}\n`,
    );
    assert.ok(optionsInside(container, "/mapped")?.includes("idmapped"));
  },
  NO_CONTAINER,
);

mountTest("mountFd here, then ns.attach there: the source's flags hold", async (fx) => {
  await using container = await startContainer();
  const source = hostSource(fx);
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  using src = await mountFd({ source, destination: "/d", flags: MS_BIND | MS_RDONLY | MS_NOSUID });
  assert.equal(src.type, "open_tree");
  await ns.attach(src, { root: "/", path: "/data" });
  const options = optionsInside(container, "/data")!;
  assert.ok(options.includes("ro") && options.includes("nosuid"), `${options}`);
  const write = await container.exec(["sh", "-c", "echo x >/data/new"]);
  assert.notEqual(write.code, 0);
}, NO_CONTAINER);

mountTest('sourceIn: "namespace" takes a source that exists only inside', async (fx) => {
  await using container = await startContainer();
  await inside(container, ["sh", "-c", "mkdir /only-inside && echo in >/only-inside/f"]);
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  await ns.mountInto({ source: "/only-inside", destination: "/t", flags: MS_BIND }, {
    root: "/",
    path: "/t",
  }, { sourceIn: "namespace", create: true });
  assert.equal(await inside(container, ["cat", "/t/f"]), "in\n");
  // The default looks in the caller's namespace, where it is not.
  await assert.rejects(
    ns.mountInto({ source: "/only-inside", destination: "/u", flags: MS_BIND }, {
      root: "/",
      path: "/u",
    }, { create: true }),
    { name: "MountError", code: "ENOENT", message: /src=\/only-inside/ },
  );
  // And a host path is not found inside, with a hint that says why.
  const host = hostSource(fx);
  await assert.rejects(
    ns.mountFd({ source: host, destination: "/h", flags: MS_BIND }, { sourceIn: "namespace" }),
    { code: "ENOENT", message: /host paths are gone after pivot_root/ },
  );
}, NO_CONTAINER);

mountTest("a link planted in the container's rootfs keeps an InRoot target inside", async (fx) => {
  await using container = await startContainer();
  await inside(container, ["ln", "-s", "/..", "/evil"]);
  await inside(container, ["ln", "-s", "/proc/self/root", "/magic"]);
  const source = hostSource(fx);
  await using ns = await openMountNamespace(container.nsPath("mnt"));
  await ns.mountInto({ source, destination: "/x", flags: MS_BIND }, {
    root: "/",
    path: "/evil/../evil/escaped",
  }, { create: true });
  assert.equal(await inside(container, ["cat", "/escaped/file"]), "host-src/file");
  assert.notEqual(mountAt("/escaped", container.pid), undefined, "at the container's /escaped");
  await assert.rejects(
    ns.mountInto({ source, destination: "/y", flags: MS_BIND }, {
      root: "/",
      path: "/magic/etc",
    }, { create: true }),
    MountError,
  );
}, NO_CONTAINER);

mountTest("a target under /proc/PID/root from here says to join the namespace", async (fx) => {
  await using container = await startContainer();
  const source = hostSource(fx);
  const pid = container.pid;
  for (const target of [`/proc/${pid}/root/data`, { root: `/proc/${pid}/root`, path: "/data" }]) {
    await assert.rejects(
      mountInto({ source, destination: "/data", flags: MS_BIND }, target),
      {
        name: "MountError",
        op: "move_mount",
        code: "EINVAL",
        message: new RegExp(
          `the target is in another mount namespace.*openMountNamespace\\("/proc/${pid}/ns/mnt"\\)`,
        ),
      },
    );
  }
  using src = await mountFd({ source, destination: "/data", flags: MS_BIND | MS_RDONLY });
  assert.throws(() => attachMountSource(src, `/proc/${pid}/root/data`), /another mount namespace/);
}, NO_CONTAINER);

mountTest(
  "rootless: a container of a user namespace we own takes mounts from us",
  async (fx) => {
    // The container's user namespace is a child of ours: we hold CAP_SYS_ADMIN
    // over it, as podman's pause process does over its containers.
    await using container = await startContainer({ userns: CONTAINER_USERNS });
    const source = hostSource(fx);
    await using ns = await openMountNamespace(container.nsPath("mnt"));
    await ns.mountInto({ source, destination: "/v", flags: MS_BIND | MS_RDONLY }, {
      root: "/",
      path: "/v",
    }, { create: true });
    assert.equal(await inside(container, ["cat", "/v/file"]), "host-src/file");
  },
  NO_CONTAINER,
  MODE === "rootless" ? undefined : "as root, the other tests cover this",
);
