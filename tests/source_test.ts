import assert from "node:assert/strict";
import { O_CLOEXEC, O_PATH } from "../ffi/constants.ts";
import {
  Handles,
  type Mount,
  MountError,
  mountFd,
  type MountIDMapping,
  MS_BIND,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_SILENT,
} from "../mod.ts";
import { checkMountInFull, isBareBind } from "../lib/check.ts";
import { attachAt, buildTree, mountTest, ranges } from "./_mounts.ts";
import { countOps } from "./_process.ts";
import { MODE, OVERFLOW_ID } from "./_env.ts";
import { owner } from "./_fixture.ts";
import { fdFlags } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";

/** Owners of `files` under `dir`, as `{ file: "uid:gid" }`. */
function owners(dir: string, files: string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [f, owner(`${dir}/${f}`)]));
}

const FILES = ["foo.txt", "bar.txt", "baz.txt"];

function bind(source: string, idMapping?: MountIDMapping, flags = MS_BIND): Mount {
  return { source, destination: "/mnt", flags, idMapping };
}

Deno.test("isBareBind() takes only mounts the full checks make a plain source of", () => {
  const base = { source: "/srv", destination: "/mnt", flags: MS_BIND };
  const cases: [string, unknown][] = [
    ["MS_BIND", base],
    ["MS_BIND | MS_REC", { ...base, flags: MS_BIND | MS_REC }],
    ["idMapping: null", { ...base, idMapping: null }],
    ["MS_BIND | MS_RDONLY", { ...base, flags: MS_BIND | MS_RDONLY }],
    ["MS_BIND | MS_SILENT", { ...base, flags: MS_BIND | MS_SILENT }],
    ["no MS_BIND", { ...base, flags: 0 }],
    ["fractional flags", { ...base, flags: MS_BIND + 0.5 }],
    ["flags as a string", { ...base, flags: String(MS_BIND) }],
    ["a NUL byte in source", { ...base, source: "/srv\0/x" }],
    ["a NUL byte in destination", { ...base, destination: "/mnt\0/x" }],
    ["source not a string", { ...base, source: 42 }],
    ["no destination", { source: "/srv", flags: MS_BIND }],
    ["an id mapping", { ...base, idMapping: { usernsPath: "/proc/1/ns/user" } }],
    ["clearedFlags: 0", { ...base, clearedFlags: 0 }],
    ["propagationFlags", { ...base, propagationFlags: [MS_PRIVATE] }],
    ["recAttr", { ...base, recAttr: { attrSet: 0, attrClr: 0, propagation: 0 } }],
    ["null", null],
    ["a string", "/srv"],
  ];
  const accepted: string[] = [];
  for (const [name, mount] of cases) {
    if (!isBareBind(mount)) continue;
    accepted.push(name);
    assert.equal(checkMountInFull(mount), "plain-open", name);
  }
  assert.deepEqual(accepted, ["MS_BIND", "MS_BIND | MS_REC", "idMapping: null"]);
});

mountTest("a plain bind gives an O_PATH, close-on-exec fd", async (fx) => {
  buildTree(fx);
  using source = await mountFd(bind(`${fx.dir}/source-multi1`));
  assert.equal(source.type, "plain-open");
  assert.equal(fdFlags(source.fd) & (O_PATH | O_CLOEXEC), O_PATH | O_CLOEXEC);
  assert.equal(Deno.readLinkSync(`/proc/self/fd/${source.fd}`), `${fx.dir}/source-multi1`);
  const target = attachAt(fx, source, "mnt");
  assert.deepEqual(owners(target, FILES), {
    "foo.txt": "100:211",
    "bar.txt": "101:222",
    "baz.txt": "102:233",
  });
});

mountTest("simple idmap mount", async (fx) => {
  buildTree(fx);
  using source = await mountFd(bind(`${fx.dir}/source-1`, simpleMapping()));
  assert.equal(source.type, "open_tree");
  assert.ok(fdFlags(source.fd) & O_CLOEXEC);
  const target = attachAt(fx, source, "mnt");
  assert.equal(owner(`${target}/foo.txt`), "10000:10000");
  assert.equal(owner(`${fx.dir}/source-1/foo.txt`), "0:0", "the disk is unchanged");
});

mountTest("ids outside the mapping show as the overflow id", async (fx) => {
  fx.mkdir("src");
  fx.file("src/in.txt", 1999, 1999);
  fx.file("src/out.txt", 2000, 5000);
  using source = await mountFd(bind(`${fx.dir}/src`, simpleMapping()));
  const target = attachAt(fx, source, "mnt");
  assert.equal(owner(`${target}/in.txt`), "11999:11999");
  assert.equal(owner(`${target}/out.txt`), `${OVERFLOW_ID}:${OVERFLOW_ID}`);
});

mountTest("writing through an idmap mount as an unmapped id fails with EOVERFLOW", async (fx) => {
  fx.mkdir("src");
  using source = await mountFd(bind(`${fx.dir}/src`, simpleMapping()));
  const target = attachAt(fx, source, "mnt");
  // We are uid 0, and 0 is no host id of the mapping: no on-disk id for it.
  assert.throws(() => Deno.writeTextFileSync(`${target}/new`, "x"), /Value too large/);
});

mountTest("writing through an idmap mount stores the mapped-back id", async (fx) => {
  Deno.chownSync(fx.mkdir("src"), 1000, 2000);
  const mapping = { uidMappings: ranges([1000, 0, 1]), gidMappings: ranges([2000, 0, 1]) };
  using source = await mountFd(bind(`${fx.dir}/src`, mapping));
  const target = attachAt(fx, source, "mnt");
  assert.equal(owner(target), "0:0", "the directory is ours through the mount");
  Deno.writeTextFileSync(`${target}/new`, "x");
  assert.equal(owner(`${target}/new`), "0:0");
  assert.equal(owner(`${fx.dir}/src/new`), "1000:2000");
});

mountTest("same source, different mappings, and a symlink source", async (fx) => {
  buildTree(fx);
  const cases: [string, MountIDMapping, string[]][] = [
    ["source-multi1", {
      uidMappings: ranges([100, 10000, 100]),
      gidMappings: ranges([200, 10000, 100]),
    }, ["10000:10011", "10001:10022", "10002:10033"]],
    ["source-multi1", {
      uidMappings: ranges([100, 11000, 100]),
      gidMappings: ranges([200, 12000, 100]),
    }, ["11000:12011", "11001:12022", "11002:12033"]],
    ["source-multi1-symlink", {
      uidMappings: ranges([100, 12000, 100]),
      gidMappings: ranges([200, 13000, 100]),
    }, ["12000:13011", "12001:13022", "12002:13033"]],
  ];
  using handles = new Handles();
  for (const [i, [src, idMapping, expected]] of cases.entries()) {
    using source = await mountFd(bind(`${fx.dir}/${src}`, idMapping), { handles });
    const target = attachAt(fx, source, `mnt-${i}`);
    assert.deepEqual(Object.values(owners(target, FILES)), expected, src);
  }
});

mountTest("multiple idmap mounts with different mappings", async (fx) => {
  buildTree(fx);
  const cases: [string, MountIDMapping, string[]][] = [
    ["source-multi1", {
      uidMappings: ranges([100, 1100, 3]),
      gidMappings: ranges([200, 1900, 50]),
    }, ["1100:1911", "1101:1922", "1102:1933"]],
    ["source-multi2", {
      uidMappings: ranges([200, 2200, 3]),
      gidMappings: ranges([200, 2900, 100]),
    }, ["2200:2911", "2201:2922", "2202:2933"]],
    ["source-multi3", {
      uidMappings: ranges([50000, 3000, 1000]),
      gidMappings: ranges([60000, 3000, 500]),
    }, ["3528:3491", "3133:3337", "3999:3444"]],
  ];
  for (const [src, idMapping, expected] of cases) {
    using source = await mountFd(bind(`${fx.dir}/${src}`, idMapping));
    const target = attachAt(fx, source, `mnt-${src}`);
    assert.deepEqual(Object.values(owners(target, FILES)), expected, src);
  }
});

mountTest("a complicated (multi-range) mapping", async (fx) => {
  buildTree(fx);
  using source = await mountFd(bind(`${fx.dir}/source-multi1`, {
    uidMappings: ranges([100, 1000, 1], [101, 2000, 1], [102, 3000, 1]),
    gidMappings: ranges([210, 1100, 10], [220, 2200, 10], [230, 3300, 10]),
  }));
  const target = attachAt(fx, source, "mnt");
  assert.deepEqual(Object.values(owners(target, FILES)), ["1000:1101", "2000:2202", "3000:3303"]);
});

const treeMapping = {
  uidMappings: ranges([100, 11000, 3], [200, 12000, 3], [300, 13000, 3]),
  gidMappings: ranges([210, 11100, 10], [220, 12200, 10], [230, 13300, 10]),
};
const TOP = ["11000:11101", "12000:12202", "13000:13303"];

mountTest("rbind with a non-recursive idmap maps the top mount only", async (fx) => {
  buildTree(fx);
  using source = await mountFd(bind(`${fx.dir}/mnt-subtree`, treeMapping, MS_BIND | MS_REC));
  const target = attachAt(fx, source, "mnt");
  assert.deepEqual(Object.values(owners(target, FILES)), TOP);
  assert.deepEqual(Object.values(owners(`${target}/multi1`, FILES)), [
    "100:211",
    "101:222",
    "102:233",
  ]);
  assert.deepEqual(Object.values(owners(`${target}/multi2`, FILES)), [
    "200:211",
    "201:222",
    "202:233",
  ]);
});

mountTest("rbind with a recursive idmap (ridmap) maps every submount", async (fx) => {
  buildTree(fx);
  using source = await mountFd(
    bind(`${fx.dir}/mnt-subtree`, { ...treeMapping, recursive: true }, MS_BIND | MS_REC),
  );
  const target = attachAt(fx, source, "mnt");
  assert.deepEqual(Object.values(owners(target, FILES)), TOP);
  assert.deepEqual(Object.values(owners(`${target}/multi1`, FILES)), [
    "11000:11101",
    "11001:12202",
    "11002:13303",
  ]);
  assert.deepEqual(Object.values(owners(`${target}/multi2`, FILES)), [
    "12000:11101",
    "12001:12202",
    "12002:13303",
  ]);
});

mountTest("a non-recursive bind leaves submounts out", async (fx) => {
  buildTree(fx);
  using idmapped = await mountFd(bind(`${fx.dir}/mnt-subtree`, treeMapping));
  const a = attachAt(fx, idmapped, "idmapped");
  assert.deepEqual(Object.values(owners(a, FILES)), TOP);
  assert.deepEqual([...Deno.readDirSync(`${a}/multi1`)], []);
  using plain = await mountFd(bind(`${fx.dir}/mnt-subtree`));
  const b = attachAt(fx, plain, "plain");
  assert.deepEqual([...Deno.readDirSync(`${b}/multi1`)], []);
  using rplain = await mountFd(bind(`${fx.dir}/mnt-subtree`, undefined, MS_BIND | MS_REC));
  const c = attachAt(fx, rplain, "rplain");
  assert.equal(owner(`${c}/multi1/foo.txt`), "100:211");
});

mountTest("usernsPath uses an existing user namespace", async (fx) => {
  buildTree(fx);
  using handles = new Handles();
  using userns = await handles.get({
    uidMappings: ranges([100, 7000, 3]),
    gidMappings: ranges([200, 8000, 100]),
  });
  for (const path of [`/proc/self/fd/${userns.fd}`, `/proc/${Deno.pid}/fd/${userns.fd}`]) {
    const { ops } = await countOps(async () => {
      using source = await mountFd(bind(`${fx.dir}/source-multi1`, { usernsPath: path }));
      const target = attachAt(fx, source, `mnt-${path.split("/")[2]}`);
      assert.deepEqual(Object.values(owners(target, FILES)), [
        "7000:8011",
        "7001:8022",
        "7002:8033",
      ]);
    });
    assert.equal(ops.get("spawn unshare"), undefined, "no helper for a usernsPath");
  }
});

mountTest("a usernsPath that is no user namespace is refused", async (fx) => {
  fx.mkdir("src");
  const file = fx.file("file");
  await assert.rejects(mountFd(bind(`${fx.dir}/src`, { usernsPath: file })), {
    name: "MountError",
    op: "open userns",
    message: `open userns userns=${file}: not a namespace file ` +
      "(expected /proc/PID/ns/user or a bind mount of one)",
  });
  await assert.rejects(mountFd(bind(`${fx.dir}/src`, { usernsPath: "/proc/self/ns/mnt" })), {
    name: "MountError",
    message: "open userns userns=/proc/self/ns/mnt: not a user namespace (namespace type: mount)",
  });
  await assert.rejects(mountFd(bind(`${fx.dir}/src`, { usernsPath: `${fx.dir}/none` })), {
    name: "MountError",
    op: "open",
    code: "ENOENT",
  });
});

mountTest("mounts share the user namespaces of a given Handles", async (fx) => {
  buildTree(fx);
  using handles = new Handles();
  const { ops } = await countOps(async () => {
    for (const src of ["source-1", "source-2", "source-multi1"]) {
      using source = await mountFd(bind(`${fx.dir}/${src}`, simpleMapping()), { handles });
      assert.equal(source.type, "open_tree");
    }
  });
  assert.equal(ops.get("spawn unshare"), 1);
  assert.equal(handles.size, 1);
});

mountTest("without a Handles, a temporary one is released before return", async (fx) => {
  fx.mkdir("src");
  const { ops } = await countOps(async () => {
    for (let i = 0; i < 2; i++) {
      using source = await mountFd(bind(`${fx.dir}/src`, simpleMapping()));
      assert.ok(source.fd >= 0);
    }
  });
  assert.equal(ops.get("spawn unshare"), 2, "nothing cached across calls");
  // mountTest checks that no fd is left behind.
});

mountTest("a non-bind mount is refused", async (fx) => {
  const { ops } = await countOps(() =>
    assert.rejects(
      mountFd({ source: "tmpfs", destination: "/tmp", device: "tmpfs", flags: 0 }),
      {
        name: "MountError",
        op: "mountFd",
        message: "mountFd src=tmpfs, dst=/tmp: new mount api: only bind-mounts are supported",
      },
    )
  );
  assert.equal(ops.size, 0);
  assert.ok(fx.dir);
});

mountTest("a missing source names the op, errno and path", async (fx) => {
  const missing = `${fx.dir}/missing`;
  await assert.rejects(mountFd(bind(missing)), {
    name: "MountError",
    op: "open",
    code: "ENOENT",
    message: `open src=${missing}: ENOENT: No such file or directory`,
  });
  await assert.rejects(mountFd(bind(missing, simpleMapping())), {
    name: "MountError",
    op: "open_tree(OPEN_TREE_CLONE)",
    code: "ENOENT",
    errno: 2,
    source: missing,
    message: `open_tree(OPEN_TREE_CLONE) src=${missing}: ENOENT: No such file or directory`,
  });
});

mountTest("EINVAL from mount_setattr carries runc's hint", async () => {
  // procfs has no idmap support.
  await assert.rejects(mountFd(bind("/proc/self", simpleMapping())), (e: unknown) => {
    assert.ok(e instanceof MountError, String(e));
    assert.equal(e.op, "mount_setattr(MOUNT_ATTR_IDMAP)");
    assert.equal(e.code, "EINVAL");
    assert.equal(
      e.message,
      "mount_setattr(MOUNT_ATTR_IDMAP) src=/proc/self: EINVAL: Invalid argument " +
        "(maybe the filesystem used doesn't support idmap mounts on this kernel?)",
    );
    assert.ok(e.cause instanceof MountError);
    return true;
  });
});

mountTest(
  "a rootless caller can't id-map a filesystem it does not own",
  async () => {
    await assert.rejects(mountFd(bind("/etc", simpleMapping())), {
      name: "MountError",
      op: "mount_setattr(MOUNT_ATTR_IDMAP)",
      code: "EPERM",
    });
  },
  MODE === "root" ? "root owns every filesystem; the rootless suite covers this" : undefined,
);

mountTest("malformed mounts are TypeErrors, before any syscall", async (fx) => {
  const src = fx.mkdir("src");
  const bad: [unknown, RegExp][] = [
    [null, /^Invalid mount: expected an object, got null$/],
    [
      { source: `${src}\0/etc`, destination: "/x", flags: MS_BIND },
      /mount\.source: contains a NUL/,
    ],
    [{ source: src, destination: "/x\0", flags: MS_BIND }, /mount\.destination: contains a NUL/],
    [{ source: 42, destination: "/x", flags: MS_BIND }, /mount\.source: expected a string/],
    [{ source: src, destination: "/x", flags: "bind" }, /mount\.flags: expected an integer/],
    [
      bind(src, { usernsPath: "/proc/self/ns/user\0" }),
      /mount\.idMapping\.usernsPath: contains a NUL/,
    ],
    [
      bind(src, { usernsPath: "/proc/self/ns/user", ...simpleMapping() }),
      /mount\.idMapping: usernsPath excludes uidMappings and gidMappings/,
    ],
    [bind(src, { uidMappings: simpleMapping().uidMappings }), /gidMappings: expected an array/],
    [
      bind(src, { ...simpleMapping(), recursive: "yes" as unknown as boolean }),
      /idMapping\.recursive: expected a boolean/,
    ],
    [
      bind(src, { uidMappings: ranges([0, 0, 0]), gidMappings: ranges([0, 0, 1]) }),
      /uidMappings\[0\]\.size/,
    ],
  ];
  const { ops } = await countOps(async () => {
    for (const [mount, message] of bad) {
      await assert.rejects(mountFd(mount as Mount), { name: "TypeError", message });
    }
  });
  assert.equal(ops.size, 0, "no syscall was made");
});

mountTest("an abort closes the tree and reaps the helper", async (fx) => {
  fx.mkdir("src");
  const controller = new AbortController();
  const pending = mountFd(bind(`${fx.dir}/src`, simpleMapping()), { signal: controller.signal });
  controller.abort(new Error("cancelled"));
  await assert.rejects(pending, { message: "cancelled" });
  await assert.rejects(
    mountFd(bind(`${fx.dir}/src`), { signal: AbortSignal.abort() }),
    { name: "AbortError" },
  );
});
