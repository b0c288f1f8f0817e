/**
 * A path inside a root: the component walk means what openat2 means, byte
 * for byte; runc's answers for dangling symbolic links; created mount points
 * owned as asked; unmount of the target given to mountInto.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { O_DIRECTORY, O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS } from "../ffi/constants.ts";
import { open, openAt, openat2 } from "../ffi/syscalls.ts";
import { walkInRoot } from "../lib/in_root.ts";
import { mountInto, MS_BIND, MS_RDONLY, OwnedFd, unmount } from "../mod.ts";
import { mountAt } from "./_mountinfo.ts";
import { mountTest } from "./_mounts.ts";
import { MODE } from "./_env.ts";
import { buildCorpus, CORPUS, NOT_UTF8, outcome } from "./_in_root.ts";

const PROBE = fileURLToPath(new URL("./_seccomp_probe.ts", import.meta.url));

mountTest("the walk and openat2 resolve the whole corpus to the same inode or errno", (fx) => {
  const root = fx.mkdir("rootfs");
  const outside = fx.mkdir("outside");
  buildCorpus(root, outside);
  using rootFd = new OwnedFd(open(root, O_PATH | O_DIRECTORY));
  const how = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const differences: string[] = [];
  const outcomes = new Map<string, string>();
  for (const path of CORPUS) {
    const kernel = outcome(() => openat2(rootFd.fd, path || ".", O_PATH, how));
    const walked = outcome(() => walkInRoot(rootFd.fd, path));
    outcomes.set(path, walked);
    if (kernel !== walked) {
      differences.push(`${path.slice(0, 40)}: openat2 ${kernel}, walk ${walked}`);
    }
  }
  assert.deepEqual(differences, []);
  // And the outcomes themselves are the right ones, not merely equal.
  const inode = (path: string): string => {
    const { dev, ino } = Deno.statSync(path);
    return `${dev}:${ino}`;
  };
  assert.equal(outcomes.get("file/"), "ENOTDIR");
  assert.equal(outcomes.get("linkfile/"), "ENOTDIR");
  assert.equal(outcomes.get("x/".repeat(2100)), "ENAMETOOLONG");
  assert.equal(
    outcomes.get("nonutf8"),
    outcome(() => openAt(rootFd.fd, NOT_UTF8, O_PATH)),
    "the link's bytes, not their lossy text",
  );
  assert.notEqual(outcomes.get("nonutf8"), inode(`${root}/u\uFFFD`));
  assert.equal(outcomes.get("/abs-out"), "ENOENT", "a host path is looked up inside the root");
  assert.equal(outcomes.get("/mid"), "ENOENT");
  assert.equal(outcomes.get("/evil/dir"), inode(`${root}/dir`));
  assert.equal(outcomes.get("/dir/up/dir/sub"), inode(`${root}/dir/sub`));
  assert.equal(outcomes.get(".."), inode(root));
  assert.equal(outcomes.get("/loop1"), "ELOOP");
  assert.deepEqual([...Deno.readDirSync(outside)], []);
});

mountTest(
  "under a seccomp filter that answers openat2 with ENOSYS, the walk gives openat2's answers",
  async (fx) => {
    const root = fx.mkdir("rootfs");
    const outside = fx.mkdir("outside");
    buildCorpus(root, outside);
    using rootFd = new OwnedFd(open(root, O_PATH | O_DIRECTORY));
    const how = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    const expected = CORPUS.map((path) =>
      outcome(() => openat2(rootFd.fd, path || ".", O_PATH, how))
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", PROBE, root, ...CORPUS],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const probe = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(probe.openat2, "ENOSYS", "the filter is in place");
    assert.deepEqual(probe.results, expected);
  },
);

/** A rootfs with runc's links of mounts.bats, and what a mount through them makes. */
function runcLinks(fx: { mkdir(rel: string): string }): string {
  const root = fx.mkdir("rootfs");
  fx.mkdir("rootfs/etc");
  fx.mkdir("rootfs/tmp");
  // "bind mount through a dangling symlink component"
  Deno.symlinkSync("/tmp/foo/bar", `${root}/jump`);
  Deno.symlinkSync("/jump/baz/hosts", `${root}/etc/hosts`);
  // "bind mount through a trailing dangling symlink"
  Deno.symlinkSync("/tmp/resolv", `${root}/etc/resolv.conf`);
  return root;
}

for (const kind of ["file", "directory"] as const) {
  mountTest(
    `runc's dangling links, a ${kind} source: made and mounted inside the root`,
    async (fx) => {
      const root = runcLinks(fx);
      const source = kind === "file" ? fx.file("source") : fx.mkdir("source");
      const mount = { source, destination: "/etc/hosts", flags: MS_BIND | MS_RDONLY };
      for (
        const [path, landed] of [
          ["/etc/hosts", `${root}/tmp/foo/bar/baz/hosts`],
          ["/etc/resolv.conf", `${root}/tmp/resolv`],
        ]
      ) {
        const target = { root, path };
        // Without create, the ENOENT names the dangling link.
        await assert.rejects(mountInto(mount, target), {
          code: "ENOENT",
          message: /through the dangling symbolic link .* -> \/(tmp|jump)/,
        });
        await mountInto(mount, target, { create: true });
        assert.equal(Deno.statSync(landed).isFile, kind === "file", landed);
        assert.equal(mountAt(landed)?.mountPoint, landed);
        // unmount of the same target removes that mount.
        unmount(target);
        assert.equal(mountAt(landed), undefined);
      }
    },
  );
}

mountTest(
  "unmount of a target given through a final symlink removes the mount mountInto made",
  async (fx) => {
    const root = fx.mkdir("rootfs");
    fx.mkdir("rootfs/data");
    Deno.symlinkSync("/data", `${root}/datalink`);
    const source = fx.mkdir("source");
    const target = { root, path: "/datalink" };
    await mountInto({ source, destination: "/d", flags: MS_BIND }, target);
    assert.equal(mountAt(`${root}/data`)?.mountPoint, `${root}/data`);
    unmount(target);
    assert.equal(mountAt(`${root}/data`), undefined);
  },
);

mountTest("created mount points belong to the owner asked for, and only those", async (fx) => {
  const root = fx.mkdir("rootfs");
  fx.mkdir("rootfs/existing");
  const source = fx.file("source");
  const owner = { uid: 1234, gid: 4321 };
  const target = { root, path: "/existing/new/deeper/file" };
  await mountInto({ source, destination: "/f", flags: MS_BIND }, target, { create: true, owner });
  const stat = (path: string): string => {
    const { uid, gid } = Deno.lstatSync(`${root}/${path}`);
    return `${uid}:${gid}`;
  };
  unmount(target);
  assert.equal(
    stat("existing"),
    MODE === "root" ? "0:0" : stat("existing"),
    "not made: not changed",
  );
  assert.equal(stat("existing/new"), "1234:4321");
  assert.equal(stat("existing/new/deeper"), "1234:4321");
  assert.equal(stat("existing/new/deeper/file"), "1234:4321");
});
