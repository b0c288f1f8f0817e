/**
 * Mount targets inside a root, against a hostile rootfs: absolute, relative
 * and intermediate symbolic links, `..` chains, magic links through a real
 * procfs inside the root, loops, and a racing process that swaps a
 * directory and a symbolic link to outside. Every mount lands inside the
 * root or fails with a MountError, never outside; checked in mountinfo.
 * The openat2 path and the component walk (its fallback) pass the same
 * cases.
 */

import assert from "node:assert/strict";
import { MS_BIND, MS_REC, O_DIRECTORY, O_PATH } from "../ffi/constants.ts";
import { close, open } from "../ffi/syscalls.ts";
import { mount as mountCall } from "./_syscalls.ts";
import { resolveInRoot, walkInRoot } from "../lib/in_root.ts";
import {
  attachMountSource,
  type MountError,
  mountFd,
  mountInto,
  MS_RDONLY,
  MS_SHARED,
  OwnedFd,
  unmount,
} from "../mod.ts";
import { mountAt, mountInfo, propagation } from "./_mountinfo.ts";
import { mountTest } from "./_mounts.ts";
import { hostileLinks, THROUGH_LINKS } from "./_in_root.ts";
import type { Fixture } from "./_fixture.ts";
import { simpleMapping } from "./_mappings.ts";

/**
 * A hostile rootfs in the fixture: `rootfs/` with planted links, and
 * `outside/`, which nothing may ever mount on.
 */
function hostileRoot(fx: Fixture): { root: string; outside: string } {
  const root = fx.mkdir("rootfs");
  const outside = fx.mkdir("outside");
  fx.mkdir("rootfs/dir/sub");
  fx.mkdir("rootfs/proc");
  const links: [string, string][] = [
    ...hostileLinks(outside),
    ["magic", "/proc/self/root"],
    ["magic-cwd", "/proc/self/cwd"],
  ];
  for (const [link, to] of links) Deno.symlinkSync(to, `${root}/${link}`);
  // A real procfs inside the root, whose magic links lead anywhere.
  mountCall("/proc", `${root}/proc`, null, MS_BIND | MS_REC, null);
  fx.track(`${root}/proc`);
  return { root, outside };
}

/** The destinations tried: each resolves inside the root, or fails. */
const HOSTILE_PATHS = [
  "/dir",
  "dir/sub",
  "/../../dir",
  "/../../../../tmp",
  ...THROUGH_LINKS,
  "/magic",
  "/magic/etc",
  "/magic-cwd",
  "/proc/self/root/etc",
  "/proc/1/root",
  "/proc/self/fd/0",
];

/** Whether `path` is `root` or below it. */
function inside(path: string, root: string): boolean {
  return root === "/" || path === root || path.startsWith(`${root}/`);
}

/** The mount points of this namespace that are at or below `dir`. */
function mountPointsUnder(dir: string): string[] {
  return mountInfo().map((m) => m.mountPoint).filter((p) => inside(p, dir));
}

type Resolver = (rootFd: number, path: string) => number;
const RESOLVERS: [string, Resolver][] = [
  ["openat2", (rootFd, path) => resolveInRoot(rootFd, path, false)],
  ["component walk", (rootFd, path) => walkInRoot(rootFd, path)],
];

for (const [name, resolve] of RESOLVERS) {
  mountTest(`${name}: every hostile path resolves inside the root, or fails`, (fx) => {
    const { root } = hostileRoot(fx);
    using rootFd = new OwnedFd(open(root, O_PATH | O_DIRECTORY));
    const outcomes: string[] = [];
    for (const path of HOSTILE_PATHS) {
      let fd: number;
      try {
        fd = resolve(rootFd.fd, path);
      } catch (error) {
        assert.equal((error as Error).name, "MountError", `${path}: ${error}`);
        const { code } = error as MountError;
        // The kernel checks ptrace access to another process before it
        // refuses the magic link itself.
        outcomes.push(`${path}: ${code === "EACCES" ? "ELOOP" : code}`);
        continue;
      }
      const where = Deno.readLinkSync(`/proc/self/fd/${fd}`);
      close(fd);
      assert.ok(inside(where, root), `${path} resolved to ${where}, outside ${root}`);
      outcomes.push(`${path}: ${where.slice(root.length) || "/"}`);
    }
    // The same meaning on both paths: magic links are refused (the walk
    // refuses every link on a procfs, openat2 only the magic ones).
    assert.deepEqual(outcomes, [
      "/dir: /dir",
      "dir/sub: /dir/sub",
      "/../../dir: /dir",
      "/../../../../tmp: ENOENT",
      "/abs-out: ENOENT",
      "/abs-root/dir: /dir",
      "/rel-up/dir: /dir",
      "/dir/up/dir/sub: /dir/sub",
      "/mid: ENOENT",
      "/evil/dir: /dir",
      "/evil/../evil/dir/sub/../../dir: /dir",
      "/loop1: ELOOP",
      "/magic: ELOOP",
      "/magic/etc: ELOOP",
      "/magic-cwd: ELOOP",
      "/proc/self/root/etc: ELOOP",
      "/proc/1/root: ELOOP",
      "/proc/self/fd/0: ELOOP",
    ]);
  });
}

for (const [kind, idMapping] of [["plain", undefined], ["idmapped", simpleMapping()]] as const) {
  mountTest(
    `mountInto: hostile destinations mount inside the root or fail (${kind})`,
    async (fx) => {
      const { root, outside } = hostileRoot(fx);
      const source = fx.mkdir("source");
      const refused: string[] = [];
      for (const path of HOSTILE_PATHS) {
        const before = mountPointsUnder(root);
        try {
          await mountInto(
            { source, destination: path, flags: MS_BIND, idMapping },
            { root, path },
            { create: true },
          );
        } catch (error) {
          assert.equal((error as Error).name, "MountError", `${path}: ${error}`);
          refused.push(path);
          continue;
        }
        const added = mountPointsUnder(root).filter((p) => !before.includes(p));
        assert.equal(added.length, 1, `${path}: one new mount, got ${added}`);
        assert.ok(inside(added[0], root), `${path} mounted at ${added[0]}`);
        unmount(added[0], { detach: true });
      }
      // What is missing is created inside the root, through a dangling link
      // too (/abs-out and /mid name host paths: they are made in the root,
      // as runc makes them); loops and magic links fail.
      assert.deepEqual(refused, [
        "/loop1",
        "/magic",
        "/magic/etc",
        "/magic-cwd",
        "/proc/self/root/etc",
        "/proc/1/root",
        "/proc/self/fd/0",
      ]);
      assert.deepEqual(mountPointsUnder(outside), [], "nothing mounted outside the root");
      assert.deepEqual([...Deno.readDirSync(outside)], [], "nothing created outside the root");
    },
  );
}

mountTest("create makes parents, a directory or a file, inside the root only", async (fx) => {
  const { root, outside } = hostileRoot(fx);
  const dir = fx.mkdir("source-dir");
  const file = fx.file("source-file");
  await mountInto({ source: dir, destination: "/x", flags: MS_BIND }, {
    root,
    path: "/evil/new/a/b",
  }, { create: true });
  assert.ok(Deno.statSync(`${root}/new/a/b`).isDirectory);
  assert.equal(mountAt(`${root}/new/a/b`)?.mountPoint, `${root}/new/a/b`);
  await mountInto({ source: file, destination: "/f", flags: MS_BIND }, {
    root,
    path: "/rel-up/etc/hosts",
  }, { create: true });
  assert.ok(Deno.statSync(`${root}/etc/hosts`).isFile);
  assert.equal(Deno.readTextFileSync(`${root}/etc/hosts`), "source-file");
  unmount({ root, path: "/etc/hosts" });
  unmount({ root, path: "/new/a/b" });
  assert.equal(mountAt(`${root}/etc/hosts`), undefined);
  assert.deepEqual([...Deno.readDirSync(outside)], []);
  // A dangling link leads to what is made: inside the root, as runc does.
  Deno.symlinkSync("/nowhere/at/all", `${root}/dangling`);
  const target = { root, path: "/dangling" };
  await mountInto({ source: dir, destination: "/d", flags: MS_BIND }, target, { create: true });
  assert.ok(Deno.statSync(`${root}/nowhere/at/all`).isDirectory);
  assert.equal(mountAt(`${root}/nowhere/at/all`)?.mountPoint, `${root}/nowhere/at/all`);
  // And unmounting the target given to mountInto removes that mount.
  unmount(target);
  assert.equal(mountAt(`${root}/nowhere/at/all`), undefined);
  assert.deepEqual([...Deno.readDirSync(outside)], []);
});

/**
 * Detaches every mount under `root` but its /proc. While a swapper renames
 * directories, a mount point read from mountinfo may have moved since, and
 * a detached parent takes its children along: ENOENT, and the next listing
 * has what is left under its new name.
 *
 * @returns The mount points left.
 */
function unmountUnder(root: string): string[] {
  const points = (): string[] =>
    mountPointsUnder(root).filter((p) => !p.startsWith(`${root}/proc`));
  // Innermost first: one detached with its parent is gone already (EINVAL),
  // one whose parent the race renamed is not where mountinfo said (ENOENT).
  for (const point of points().reverse()) {
    try {
      unmount(point, { detach: true });
    } catch (error) {
      const { code } = error as MountError;
      if (code !== "ENOENT" && code !== "EINVAL") throw error;
    }
  }
  return points();
}

mountTest("a racing swap of a directory and a link to outside never mounts outside", async (fx) => {
  const { root, outside } = hostileRoot(fx);
  const source = fx.mkdir("source");
  fx.mkdir("rootfs/t.dir");
  Deno.symlinkSync(outside, `${root}/t.link`);
  // Swaps "t" between a directory and a link to outside, as fast as it can.
  const swapper = new Deno.Command("perl", {
    args: [
      "-e",
      'chdir $ARGV[0] or die; for (;;) { rename "t.dir", "t"; rename "t", "t.dir"; ' +
      'rename "t.link", "t"; rename "t", "t.link"; }',
      root,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let mounted = 0;
  try {
    for (let i = 0; i < 200; i++) {
      try {
        // The swapped entry as the last component, and as a parent.
        const path = i % 2 === 0 ? "/t" : "/t/m";
        await mountInto({ source, destination: path, flags: MS_BIND }, { root, path }, {
          create: true,
        });
        mounted++;
      } catch (error) {
        assert.equal((error as Error).name, "MountError", String(error));
      }
      assert.deepEqual(mountPointsUnder(outside), [], `round ${i}: mounted outside`);
      unmountUnder(root);
    }
  } finally {
    swapper.kill("SIGKILL");
    await swapper.status;
  }
  for (let i = 0; i < 10 && unmountUnder(root).length > 0; i++);
  assert.deepEqual(unmountUnder(root), [], "every mount inside the root detached");
  assert.deepEqual(mountPointsUnder(outside), []);
  assert.deepEqual(
    [...Deno.readDirSync(outside)].map((e) => e.name),
    [],
    "nothing was created outside the root",
  );
  console.log(`  ${mounted} of 200 mounts landed, all inside the root; the rest failed cleanly`);
});

mountTest("a source's MS_RDONLY holds through mountFd and attachMountSource", async (fx) => {
  const source = fx.mkdir("source");
  fx.file("source/file");
  const target = fx.mkdir("target");
  {
    using src = await mountFd({ source, destination: "/d", flags: MS_BIND | MS_RDONLY });
    assert.equal(src.type, "open_tree");
    attachMountSource(src, target);
  }
  fx.track(target);
  assert.throws(
    () => Deno.writeTextFileSync(`${target}/file`, "x"),
    (error: unknown) => (error as Error).message.includes("Read-only file system"),
  );
  Deno.writeTextFileSync(`${source}/file`, "still writable at the source");
});

mountTest(
  "a /proc/self/fd/N target: the flags and propagation land on the new mount",
  async (fx) => {
    const source = fx.mkdir("source");
    const target = fx.mkdir("target");
    const parentBefore = mountInfo().findLast((m) => inside(target, m.mountPoint))!;
    using dir = new OwnedFd(open(target, O_PATH | O_DIRECTORY));
    await mountInto(
      { source, destination: "/d", flags: MS_BIND | MS_RDONLY, propagationFlags: [MS_SHARED] },
      `/proc/self/fd/${dir.fd}`,
    );
    fx.track(target);
    const info = mountAt(target)!;
    assert.ok(info.options.includes("ro"), `new mount is read-only: ${info.options}`);
    assert.equal(propagation(info), "shared");
    const parentAfter = mountInfo().find((m) => m.id === parentBefore.id)!;
    assert.deepEqual(parentAfter.options, parentBefore.options, "parent's flags unchanged");
    assert.equal(propagation(parentAfter), propagation(parentBefore), "parent's propagation too");
  },
);

mountTest(
  "unmount of an InRoot target does not follow a final link out of the root",
  (fx) => {
    const { root, outside } = hostileRoot(fx);
    const source = fx.mkdir("source");
    // Something mounted outside, that a followed link would unmount.
    mountCall(source, outside, null, MS_BIND, null);
    fx.track(outside);
    Deno.symlinkSync(outside, `${root}/to-outside`);
    assert.throws(() => unmount({ root, path: "/to-outside" }), { name: "MountError" });
    assert.throws(() => unmount({ root, path: "/abs-out" }), { name: "MountError" });
    assert.notEqual(mountAt(outside), undefined, "the mount outside is still there");
    assert.throws(() => unmount({ root, path: "/" }), {
      name: "MountError",
      message: /the path leads to the root itself/,
    });
  },
);
