import assert from "node:assert/strict";
import { attachMountSource, mountFd, type MountSource, MS_BIND, MS_REC } from "../mod.ts";
import { attachAt, buildTree, mountTest } from "./_mounts.ts";
import { owner } from "./_fixture.ts";
import { simpleMapping } from "./_mappings.ts";

function mountinfoHas(target: string): boolean {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .some((line) => line.split(" ")[4] === target);
}

mountTest("an open_tree source attaches with move_mount", async (fx) => {
  fx.mkdir("src");
  fx.file("src/f", 5, 6);
  using source = await mountFd({
    source: `${fx.dir}/src`,
    destination: "/d",
    flags: MS_BIND,
    idMapping: simpleMapping(),
  });
  const target = fx.mkdir("mnt");
  assert.equal(mountinfoHas(target), false);
  attachMountSource(source, target);
  fx.track(target);
  assert.equal(mountinfoHas(target), true);
  assert.equal(owner(`${target}/f`), "10005:10006");
});

mountTest("a plain-open source attaches with a bind mount, recursive with MS_REC", async (fx) => {
  buildTree(fx);
  for (const [flags, expected] of [[MS_BIND, 0], [MS_BIND | MS_REC, 3]] as const) {
    using source = await mountFd({ source: `${fx.dir}/mnt-subtree`, destination: "/d", flags });
    const target = attachAt(fx, source, `mnt-${flags}`);
    assert.equal(mountinfoHas(target), true);
    assert.equal([...Deno.readDirSync(`${target}/multi1`)].length, expected);
  }
});

mountTest("a symlink at the target is followed, as mount(2) does", async (fx) => {
  fx.mkdir("src");
  fx.file("src/f");
  const real = fx.mkdir("real");
  Deno.symlinkSync(real, `${fx.dir}/link`);
  using source = await mountFd({
    source: `${fx.dir}/src`,
    destination: "/d",
    flags: MS_BIND,
    idMapping: simpleMapping(),
  });
  attachMountSource(source, `${fx.dir}/link`);
  fx.track(real);
  assert.equal(mountinfoHas(real), true);
  assert.equal(owner(`${real}/f`), "10000:10000");
});

mountTest("a failed attach names the op, errno, source and target", async (fx) => {
  fx.mkdir("src");
  const missing = `${fx.dir}/missing/x`;
  using tree = await mountFd({
    source: `${fx.dir}/src`,
    destination: "/d",
    flags: MS_BIND,
    idMapping: simpleMapping(),
  });
  // The target is resolved first, once: that is what fails.
  using plain = await mountFd({ source: `${fx.dir}/src`, destination: "/d", flags: MS_BIND });
  for (const source of [tree, plain]) {
    assert.throws(() => attachMountSource(source, missing), {
      name: "MountError",
      op: "open",
      code: "ENOENT",
      source: `${fx.dir}/src`,
      target: missing,
      message: `open src=${fx.dir}/src, dst=${missing}: ENOENT: No such file or directory ` +
        "(the target is missing)",
    });
  }
  // A target of the other kind fails at the attach, and says so.
  const file = fx.file("file");
  assert.throws(() => attachMountSource(tree, file), {
    name: "MountError",
    op: "move_mount",
    code: "EINVAL",
    message: /\(the source is a directory and the target a file: they must match\)$/,
  });
});

mountTest("attachMountSource() refuses bad input before any syscall", async (fx) => {
  fx.mkdir("src");
  const source = await mountFd({ source: `${fx.dir}/src`, destination: "/d", flags: MS_BIND });
  assert.throws(() => attachMountSource(source, `${fx.dir}/x\0`), {
    name: "TypeError",
    message: /^Invalid target: contains a NUL byte/,
  });
  source.close();
  assert.throws(() => attachMountSource(source, fx.dir), {
    name: "TypeError",
    message: "Cannot attach a closed mount source",
  });
  assert.throws(
    () => attachMountSource({ type: "open_tree", fd: 0 } as unknown as MountSource, fx.dir),
    { name: "TypeError", message: /^Invalid source: expected a MountSource/ },
  );
});
