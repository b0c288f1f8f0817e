/**
 * The container fixture of tests/_container.ts: it pivots for real, it is in
 * namespaces of its own, and it leaves nothing behind.
 */

import assert from "node:assert/strict";
import type { IDMap, Mapping } from "../mod.ts";
import {
  type Container,
  CONTAINER_USERNS,
  NO_CONTAINER,
  startContainer,
  startTime,
} from "./_container.ts";
import { MNT_DETACH, MS_NOEXEC } from "../ffi/constants.ts";
import { umount2 } from "../ffi/syscalls.ts";
import { mount } from "./_syscalls.ts";
import { CANNOT_MOUNT, NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids, newFds, openFds } from "./_leaks.ts";

/** The names in a directory, sorted. */
function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** The pids of every process in the pid namespace `ns` (a link's text). */
function processesIn(ns: string): number[] {
  const pids: number[] = [];
  for (const { name } of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${name}/ns/pid`) === ns) pids.push(Number(name));
    } catch {
      // Gone, or not ours to look at.
    }
  }
  return pids;
}

/** A map file's text, one range a line, single spaces. */
function mapFile(path: string): string {
  return Deno.readTextFileSync(path).trim().split("\n")
    .map((line) => line.trim().split(/\s+/).join(" ")).join("\n");
}

/** The text of a map, as the kernel shows it, single-spaced. */
function mapText(map: IDMap[]): string {
  return map.map((m) => `${m.containerID} ${m.hostID} ${m.size}`).join("\n");
}

/** Runs a command inside and asserts it succeeded; returns its stdout. */
async function run(container: Container, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await container.exec(args);
  assert.equal(code, 0, `${args.join(" ")} failed with ${code}: ${stderr}`);
  return stdout;
}

/**
 * Disposes of a container and checks that it left nothing: no process of its
 * pid namespace, no child of ours, no fd, no rootfs.
 */
async function disposeAndCheck(
  container: Container,
  before: { fds: Set<number>; children: number[] },
): Promise<void> {
  const pidns = Deno.readLinkSync(container.nsPath("pid"));
  const start = startTime(container.pid);
  assert.notEqual(start, undefined);
  assert.ok(processesIn(pidns).length >= 1);
  await container[Symbol.asyncDispose]();
  assert.notEqual(startTime(container.pid), start, "the init is gone");
  assert.deepEqual(processesIn(pidns), [], "no process of its pid namespace is left");
  assert.deepEqual(childPids(), before.children, "every child is reaped");
  assert.deepEqual(newFds(before.fds), [], "no fd is left open");
  assert.throws(() => Deno.lstatSync(container.rootfs), Deno.errors.NotFound);
}

const ROOTFS = ["bin", "data", "etc", "proc", "tmp"];

Deno.test({
  ...skipUnless(
    "container: pivoted into its rootfs, in mount and pid namespaces of its own",
    NO_CONTAINER,
  ),
  async fn(): Promise<void> {
    const before = { fds: openFds(), children: childPids() };
    const container = await startContainer();
    try {
      const { pid, rootfs } = container;
      // From here: its root is the rootfs, and its namespaces are not ours.
      assert.deepEqual(names(rootfs), ROOTFS);
      assert.deepEqual(names(`/proc/${pid}/root`), ROOTFS);
      assert.equal(
        Deno.statSync(`/proc/${pid}/root/bin/busybox`).ino,
        Deno.statSync(`${rootfs}/bin/busybox`).ino,
      );
      assert.notEqual(
        Deno.readLinkSync(container.nsPath("mnt")),
        Deno.readLinkSync("/proc/self/ns/mnt"),
      );
      assert.notEqual(
        Deno.readLinkSync(container.nsPath("pid")),
        Deno.readLinkSync("/proc/self/ns/pid"),
      );
      assert.equal(
        Deno.readLinkSync(container.nsPath("user")),
        Deno.readLinkSync("/proc/self/ns/user"),
      );
      const nspid = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^NSpid:\s+(.*)$/m)?.[1];
      assert.deepEqual(nspid?.split(/\s+/), [String(pid), "1"], "pid 1 inside");

      // From inside: the rootfs and nothing of the host.
      const inside = (await run(container, ["ls", "-1A", "/"])).trim().split("\n").sort();
      assert.deepEqual(inside, ROOTFS);
      const hostOnly = names("/").filter((name) => !ROOTFS.includes(name));
      assert.ok(hostOnly.length > 0);
      assert.deepEqual(inside.filter((name) => hostOnly.includes(name)), []);
      const mountPoints = (await run(container, ["cat", "/proc/self/mountinfo"])).trim()
        .split("\n").map((line) => line.split(" ")[4]);
      assert.deepEqual(mountPoints, ["/", "/proc"], "the old root is gone");
      for (const file of ["cmdline", "environ"]) {
        const text = await run(container, ["cat", `/proc/1/${file}`]);
        assert.ok(text.length > 0);
        assert.ok(!text.includes(rootfs), `/proc/1/${file} names no host path: ${text}`);
      }
      assert.equal(await run(container, ["readlink", "/proc/1/exe"]), "/bin/busybox\n");
      assert.equal(await run(container, ["id", "-u"]), "0\n");
      await run(container, ["sh", "-c", "echo inside >/data/file"]);
      assert.equal(Deno.readTextFileSync(`${rootfs}/data/file`), "inside\n");

      // exec reports the exit code and both outputs.
      assert.deepEqual(
        await container.exec(["sh", "-c", "echo out; echo err >&2; exit 3"]),
        { code: 3, stdout: "out\n", stderr: "err\n" },
      );
      const missing = await container.exec(["cat", "/no/such/file"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /No such file/);

      // A process left running inside goes with the container.
      await run(container, ["sh", "-c", "sleep 1000 >&- 2>&- <&- &"]);
      const pidns = Deno.readLinkSync(container.nsPath("pid"));
      assert.ok(processesIn(pidns).length >= 2);
    } finally {
      await disposeAndCheck(container, before);
    }
  },
});

Deno.test({
  ...skipUnless(
    "container: a user namespace of its own has the maps asked, and its root owns the rootfs",
    NO_CONTAINER,
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    const before = { fds: openFds(), children: childPids() };
    const { hostID, size } = CONTAINER_USERNS.uidMappings[0];
    // Two ranges for gids, to see the order and the split kept.
    const userns: Mapping = {
      uidMappings: CONTAINER_USERNS.uidMappings,
      gidMappings: [
        { containerID: 0, hostID, size: 10 },
        { containerID: 10, hostID: hostID + 10, size: size - 10 },
      ],
    };
    const container = await startContainer({ userns });
    try {
      const { pid, rootfs } = container;
      assert.equal(mapFile(`/proc/${pid}/uid_map`), mapText(userns.uidMappings));
      assert.equal(mapFile(`/proc/${pid}/gid_map`), mapText(userns.gidMappings));
      assert.notEqual(
        Deno.readLinkSync(container.nsPath("user")),
        Deno.readLinkSync("/proc/self/ns/user"),
      );
      assert.notEqual(
        Deno.readLinkSync(container.nsPath("mnt")),
        Deno.readLinkSync("/proc/self/ns/mnt"),
      );
      assert.deepEqual(names(`/proc/${pid}/root`), ROOTFS);
      // The init runs as the container's root, which is hostID here.
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      assert.match(status, new RegExp(`^Uid:\\s+${hostID}\\s+${hostID}\\s+`, "m"));
      assert.equal(Deno.statSync(rootfs).uid, hostID);

      // Inside, it is root, and owns its rootfs.
      assert.equal(
        await run(container, ["cat", "/proc/self/uid_map"]).then((t) =>
          t.trim().split(/\s+/).join(" ")
        ),
        mapText(userns.uidMappings),
      );
      assert.equal(await run(container, ["id", "-u"]), "0\n");
      assert.equal(
        await run(container, ["stat", "-c", "%u:%g", "/", "/bin/busybox"]),
        "0:0\n0:0\n",
      );
      const inside = (await run(container, ["ls", "-1A", "/"])).trim().split("\n").sort();
      assert.deepEqual(inside, ROOTFS);
      const mountPoints = (await run(container, ["cat", "/proc/self/mountinfo"])).trim()
        .split("\n").map((line) => line.split(" ")[4]);
      assert.deepEqual(mountPoints, ["/", "/proc"]);

      // What its root writes is the container's root's on disk.
      await run(container, ["sh", "-c", "echo x >/data/file && chown 10:11 /data/file"]);
      const { uid, gid } = Deno.statSync(`${rootfs}/data/file`);
      assert.deepEqual([uid, gid], [hostID + 10, hostID + 11]);
      // An id it does not map is not its to give.
      const chown = await container.exec(["chown", `${size}`, "/data/file"]);
      assert.notEqual(chown.code, 0);
    } finally {
      await disposeAndCheck(container, before);
    }
  },
});

Deno.test({
  ...skipUnless(
    "container: without a proc of its own, /proc inside is an empty directory",
    NO_CONTAINER,
  ),
  async fn(): Promise<void> {
    const before = { fds: openFds(), children: childPids() };
    const container = await startContainer({ proc: false });
    try {
      assert.deepEqual(names(`/proc/${container.pid}/root/proc`), []);
      assert.equal(await run(container, ["ls", "-A", "/proc"]), "");
    } finally {
      await disposeAndCheck(container, before);
    }
  },
});

Deno.test({
  ...skipUnless(
    "container: one that fails to start leaves nothing behind, and says why",
    NO_CONTAINER,
  ),
  async fn(): Promise<void> {
    const dir = Deno.makeTempDirSync({ prefix: "mountfd-container-test-" });
    Deno.chmodSync(dir, 0o755);
    try {
      const before = { fds: openFds(), children: childPids() };
      // Overlapping ranges: no kernel takes them.
      const bad = [{ containerID: 0, hostID: 1000, size: 10 }, {
        containerID: 5,
        hostID: 2000,
        size: 10,
      }];
      await assert.rejects(
        startContainer({ userns: { uidMappings: bad, gidMappings: bad }, dir }),
        /^Error: Cannot write the container's uid_map: .*Invalid argument/,
      );
      // Not ready in time.
      await assert.rejects(startContainer({ dir, timeout: 0 }), /no ready line in time/);
      if (!CANNOT_MOUNT) {
        // Its busybox can't run: unshare says so, and exits.
        mount("tmpfs", dir, "tmpfs", MS_NOEXEC, "mode=0755");
        try {
          await assert.rejects(
            startContainer({ dir }),
            /The container failed to start: it exited: unshare: .*Permission denied/,
          );
        } finally {
          umount2(dir, MNT_DETACH);
        }
      }
      assert.deepEqual(names(dir), [], "no rootfs left");
      assert.deepEqual(childPids(), before.children);
      assert.deepEqual(newFds(before.fds), []);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...skipUnless("container: start and dispose, again and again, leak nothing", NO_CONTAINER),
  async fn(): Promise<void> {
    const before = { fds: openFds(), children: childPids() };
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const container = await startContainer();
      times.push(performance.now() - t0);
      assert.deepEqual(names(`/proc/${container.pid}/root`), ROOTFS);
      await disposeAndCheck(container, before);
    }
    times.sort((a, b) => a - b);
    console.log(`start to ready: median ${times[2].toFixed(1)} ms of 5`);
  },
});
