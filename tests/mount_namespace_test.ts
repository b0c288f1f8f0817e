import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { mount } from "./_syscalls.ts";
import { openTestNamespace } from "./_test_namespace.ts";
import type { TestCalls } from "./_test_worker.ts";
import {
  attachMountSource,
  Handles,
  MountError,
  mountFd,
  MS_BIND,
  MS_NODEV,
  MS_NOSUID,
  MS_RDONLY,
  MS_SHARED,
  openMountNamespace,
} from "../mod.ts";
import { mountAt, mountsUnder, propagation } from "./_mountinfo.ts";
import { mountTest } from "./_mounts.ts";
import { bind, IN_NS, NamespaceHelper, startHelper, threadsIn } from "./_namespace.ts";
import { simpleMapping } from "./_mappings.ts";

const PROBE = fileURLToPath(new URL("./_setns_probe.ts", import.meta.url));
const CRASH_PROBE = fileURLToPath(new URL("./_crash_probe.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The per-mount options of the mount at `path` in the helper, but idmapped, sorted. */
function optionsIn(helper: NamespaceHelper, path: string): string[] | undefined {
  return mountAt(path, helper.pid)?.options.sort();
}

mountTest("mounts made through a namespace show there, and not here", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  assert.throws(() => Deno.statSync(`${dir}/src`), Deno.errors.NotFound, "src is inside only");
  await using ns = await openMountNamespace(helper.nsPath);
  assert.equal(ns.path, helper.nsPath);
  assert.equal(ns.closed, false);
  await ns.mountInto(bind(`${dir}/src`), `${dir}/t1`, IN_NS);
  await ns.mountInto(
    bind(`${dir}/src`, simpleMapping(), { flags: MS_BIND | MS_RDONLY }),
    `${dir}/t2`,
    IN_NS,
  );
  // Relative paths resolve from the namespace's root.
  await ns.mountInto(bind(`${dir.slice(1)}/src`), `${dir.slice(1)}/t3`, IN_NS);
  assert.deepEqual(optionsIn(helper, `${dir}/t1`), ["relatime", "rw"]);
  assert.deepEqual(optionsIn(helper, `${dir}/t2`), ["idmapped", "relatime", "ro"]);
  assert.deepEqual(optionsIn(helper, `${dir}/t3`), ["relatime", "rw"]);
  for (const t of ["t1", "t2", "t3"]) assert.equal(mountAt(`${dir}/${t}`), undefined);
  assert.equal(Deno.readTextFileSync(helper.inside(`${dir}/t1/file`)), "inside\n");
  assert.equal(Deno.statSync(helper.inside(`${dir}/t2/file`)).uid, 10000);
  assert.equal(Deno.statSync(helper.inside(`${dir}/t1/file`)).uid, 0);
});

mountTest("an fd from the namespace attaches on the main thread too", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  await using ns = await openMountNamespace(helper.nsPath);
  // A detached (open_tree) mount attaches in any namespace.
  using tree = await ns.mountFd(bind(`${dir}/src`, simpleMapping()), IN_NS);
  assert.equal(tree.type, "open_tree");
  const here = fx.mkdir("here");
  fx.track(here);
  attachMountSource(tree, here);
  assert.equal(Deno.readTextFileSync(`${here}/file`), "inside\n");
  assert.equal(Deno.statSync(`${here}/file`).uid, 10000);
  assert.ok(mountAt(here)?.options.includes("idmapped"));
  // A plain one binds only in its own namespace: here the kernel says EINVAL.
  using plain = await ns.mountFd(bind(`${dir}/src`), IN_NS);
  assert.equal(plain.type, "plain-open");
  const there = fx.mkdir("there");
  fx.track(there);
  assert.throws(() => attachMountSource(plain, there), (e: unknown) => {
    assert.ok(e instanceof MountError, String(e));
    assert.equal(e.op, "open_tree(OPEN_TREE_CLONE)");
    assert.equal(e.code, "EINVAL");
    assert.match(
      e.message,
      /a plain-open source attaches only in the mount namespace it was opened in \(mnt:\[\d+\]\)/,
    );
    return true;
  });
  assert.equal(mountAt(there), undefined);
  await ns.attach(plain, `${dir}/t1`);
  assert.ok(mountAt(`${dir}/t1`, helper.pid));
});

mountTest("sources of the main thread attach in the namespace, open_tree ones only", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  const src = fx.mkdir("hostsrc");
  Deno.writeTextFileSync(`${src}/file`, "outside\n");
  await using ns = await openMountNamespace(helper.nsPath);
  using tree = await mountFd(bind(src, simpleMapping()));
  await ns.attach(tree, `${dir}/t1`);
  assert.equal(Deno.readTextFileSync(helper.inside(`${dir}/t1/file`)), "outside\n");
  using plain = await mountFd(bind(src));
  await assert.rejects(ns.attach(plain, `${dir}/t2`), {
    name: "MountError",
    op: "open_tree(OPEN_TREE_CLONE)",
    code: "EINVAL",
    message: /attaches only in the mount namespace it was opened in \(the caller's\)/,
  });
  assert.equal(mountAt(`${dir}/t2`, helper.pid), undefined);
});

mountTest("bad namespace paths and types are clear errors", async (fx) => {
  await using helper = await startHelper(fx);
  await assert.rejects(openMountNamespace(`${fx.dir}/missing`), {
    name: "MountError",
    op: "open",
    code: "ENOENT",
    message: `open src=${fx.dir}/missing: ENOENT: No such file or directory`,
  });
  await assert.rejects(openMountNamespace(`/proc/${helper.pid}/ns/user`), {
    name: "MountError",
    op: "open mntns",
    message: `open mntns src=/proc/${helper.pid}/ns/user: not a mount namespace ` +
      "(namespace type: user)",
  });
  const file = fx.file("file");
  await assert.rejects(openMountNamespace(file), {
    op: "open mntns",
    message: `open mntns src=${file}: not a namespace file ` +
      "(expected /proc/PID/ns/mnt or a bind mount of one)",
  });
  await assert.rejects(openMountNamespace(`${helper.nsPath}\0`), {
    name: "TypeError",
    message: /^Invalid nsPath: contains a NUL byte/,
  });
  await assert.rejects(openMountNamespace(helper.nsPath, { timeout: 0 }), {
    name: "TypeError",
    message: "Invalid timeout: expected a positive number of ms, got 0",
  });
});

mountTest("bad paths inside the namespace name the op, errno and path", async (fx) => {
  await using helper = await startHelper(fx);
  const dir = helper.dir;
  await using ns = await openMountNamespace(helper.nsPath);
  await assert.rejects(ns.mountFd(bind(`${dir}/missing`), IN_NS), {
    name: "MountError",
    op: "open",
    code: "ENOENT",
    message: `open src=${dir}/missing: ENOENT: No such file or directory (with sourceIn: ` +
      `"namespace" the source is looked up inside the mount namespace, where host paths ` +
      `are gone after pivot_root; a host path needs sourceIn: "caller")`,
  });
  await assert.rejects(ns.mountFd(bind(`${dir}/missing`, simpleMapping()), IN_NS), {
    op: "open_tree(OPEN_TREE_CLONE)",
    code: "ENOENT",
  });
  for (const idMapping of [undefined, simpleMapping()]) {
    await assert.rejects(ns.mountInto(bind(`${dir}/src`, idMapping), `${dir}/missing`, IN_NS), {
      name: "MountError",
      op: "open",
      code: "ENOENT",
      message: new RegExp(`src=${dir}/src, dst=${dir}/missing: ENOENT`),
    });
  }
  await assert.rejects(
    ns.mountFd(bind(`${dir}/src`), { sourceIn: "elsewhere" as "caller" }),
    {
      name: "TypeError",
      message: 'Invalid options.sourceIn: expected "caller" or "namespace", got string',
    },
  );
  await assert.rejects(ns.mountFd({ source: "tmpfs", destination: "/t", flags: 0 }, IN_NS), {
    op: "mountFd",
    message: /only bind-mounts are supported/,
  });
  // The namespace is still usable after errors.
  await ns.mountInto(bind(`${dir}/src`), `${dir}/t1`, IN_NS);
  assert.ok(mountAt(`${dir}/t1`, helper.pid));
});

mountTest("joining a namespace without privilege over it is EPERM", async () => {
  // A process in a new user namespace tries to join its own mount namespace,
  // which the parent user namespace owns. (Binding a helper's ns file for it
  // to open is flaky: the kernel's loop check sometimes refuses it, EINVAL.)
  const { stdout, stderr, success } = await new Deno.Command("unshare", {
    args: [
      "--user",
      "--map-root-user",
      "--",
      Deno.execPath(),
      "run",
      "--allow-ffi",
      `--allow-read=${ROOT}`,
      PROBE,
      "/proc/self/ns/mnt",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), {
    ok: false,
    name: "MountError",
    op: "setns(CLONE_NEWNS)",
    code: "EPERM",
    message: "setns(CLONE_NEWNS) dst=/proc/self/ns/mnt: EPERM: Operation not permitted " +
      "(joining a mount namespace needs CAP_SYS_ADMIN in the user namespace that owns it: " +
      "run this inside that user namespace, in a mount namespace of its own, such as under " +
      "nsenter --target PID --user --preserve-credentials unshare --mount)",
  });
});

mountTest("a Worker that dies fails what is pending, and every later call", async (fx) => {
  // In a process of its own: Deno prints the Worker's uncaught error there.
  await using helper = await startHelper(fx);
  const { stdout, stderr, success } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", `--allow-read=${ROOT}`, CRASH_PROBE, helper.nsPath, "/"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const errors = new TextDecoder().decode(stderr);
  assert.ok(success, errors);
  assert.match(errors, /Crash requested by a test/, "Deno reported the Worker's error");
  const died = `MountError: mount namespace worker dst=${helper.nsPath}: the worker died: ` +
    "Uncaught Error: Crash requested by a test";
  assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), {
    pending: died,
    closed: true,
    later: died,
  });
  for (let i = 0; i < 100 && threadsIn(helper.nsPath).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual(threadsIn(helper.nsPath), []);
});

for (const [kind, idMapping] of [["plain", undefined], ["idmapped", simpleMapping()]] as const) {
  mountTest(`a failure after the attach detaches it, in the namespace (${kind})`, async (fx) => {
    await using helper = await startHelper(fx);
    const dir = helper.dir;
    await using ns = await openTestNamespace(helper.nsPath);
    const mount = bind(`${dir}/src`, idMapping, {
      flags: MS_BIND | MS_RDONLY,
      propagationFlags: [MS_SHARED],
    });
    const fault: TestCalls["fault"] = { faults: [["mount_setattr(MS_SHARED)", 5]] };
    await ns.send("fault", fault);
    await assert.rejects(ns.mountInto(mount, `${dir}/t1`, IN_NS), {
      name: "MountError",
      op: "mount_setattr(MS_SHARED)",
      code: "EIO",
      message: `mount_setattr(MS_SHARED) src=${dir}/src, dst=${dir}/t1: EIO: Input/output error`,
    });
    assert.equal(mountAt(`${dir}/t1`, helper.pid), undefined);
    await ns.mountInto(mount, `${dir}/t1`, IN_NS);
    const info = mountAt(`${dir}/t1`, helper.pid)!;
    assert.equal(propagation(info), "shared");
    assert.ok(info.options.includes("ro"));
  });

  mountTest(
    `flags locked by a less privileged namespace are kept, as runc does (${kind})`,
    async (fx) => {
      // The source is mounted here, nosuid,nodev; the helper's user namespace
      // copies it with those flags locked.
      const src = fx.mkdir("src");
      mount("tmpfs", src, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m");
      fx.track(src);
      const t = fx.mkdir("t");
      const t2 = fx.mkdir("t2");
      await using helper = await NamespaceHelper.start(fx.mkdir("ns"), { user: true });
      await using ns = await openMountNamespace(helper.nsPath);
      await ns.mountInto(bind(src, idMapping, { flags: MS_BIND | MS_RDONLY }), t, IN_NS);
      assert.deepEqual(optionsIn(helper, t)?.filter((o) => o !== "idmapped"), [
        "nodev",
        "nosuid",
        "relatime",
        "ro",
      ]);
      await assert.rejects(
        ns.mountInto(bind(src, idMapping, { flags: MS_BIND, clearedFlags: MS_NOSUID }), t2, IN_NS),
        {
          name: "MountError",
          code: "EPERM",
          message: /\(cannot clear locked flags MS_NOSUID\)$/,
        },
      );
      assert.equal(mountAt(t2, helper.pid), undefined);
      assert.equal(mountsUnder(t).length, 0, "nothing here");
    },
  );
}

mountTest("plain binds work in a namespace whose /proc is not this process's", async (fx) => {
  // Inside, /proc is an empty tmpfs: /proc/self/fd/N resolves to nothing
  // there. The Worker binds through its saved fd of our /proc instead.
  await using helper = await NamespaceHelper.start(fx.mkdir("ns"), {
    setup: 'mkdir "$DIR/src" "$DIR/t1" && mount -t tmpfs none /proc',
  });
  const dir = helper.dir;
  assert.deepEqual([...Deno.readDirSync(helper.inside("/proc"))], []);
  await using ns = await openMountNamespace(helper.nsPath);
  await ns.mountInto(
    bind(`${dir}/src`, undefined, { flags: MS_BIND | MS_RDONLY }),
    `${dir}/t1`,
    IN_NS,
  );
  assert.deepEqual(optionsIn(helper, `${dir}/t1`), ["relatime", "ro"]);
});

mountTest("a given Handles is used, and kept, by the namespace", async (fx) => {
  await using helper = await startHelper(fx);
  using handles = new Handles();
  const ns = await openMountNamespace(helper.nsPath, { handles });
  using source = await ns.mountFd(bind(`${helper.dir}/src`, simpleMapping()), IN_NS);
  assert.equal(source.type, "open_tree");
  assert.equal(handles.size, 1);
  await ns.close();
  assert.equal(handles.size, 1, "not released by the namespace");
  await assert.rejects(openMountNamespace(helper.nsPath, { handles: {} as Handles }), {
    name: "TypeError",
    message: "Invalid handles: expected a Handles, got object",
  });
});
