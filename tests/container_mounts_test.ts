import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  parseCommandLine,
  refusal,
  resolveInRoot,
  specContext,
} from "../examples/container_mounts.ts";
import { openMountNamespace } from "../mod.ts";
import { CONTAINER_USERNS, NO_CONTAINER, startContainer } from "./_container.ts";
import { mountAt, mountInfo, propagation } from "./_mountinfo.ts";
import { mountTest } from "./_mounts.ts";
import { MODE } from "./_env.ts";
import { NO_RUNC, NO_TEST_USER, type RuncContainer, startRunc, TEST_USER } from "./_runc.ts";
import { NamespaceHelper } from "./_namespace.ts";
import type { Fixture } from "./_fixture.ts";

const TOOL = fileURLToPath(new URL("../examples/container_mounts.ts", import.meta.url));
const FLAGS = ["--allow-ffi", "--allow-run=unshare", "--allow-read"];
const MAP = [{ containerID: 0, hostID: 10000, size: 2000 }];

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, TOOL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
}

/** A bundle with config.json beside a relative source, and a helper "container". */
async function container(fx: Fixture): Promise<{ helper: NamespaceHelper; bundle: string }> {
  const bundle = fx.mkdir("bundle");
  fx.mkdir("bundle/relative");
  Deno.writeTextFileSync(`${bundle}/relative/file`, "from the bundle\n");
  const helper = await NamespaceHelper.start(fx.mkdir("ns"), {
    setup: 'mkdir -p "$DIR/src" "$DIR/rootfs/data" "$DIR/rootfs/shared" "$DIR/rootfs/missing" ' +
      '&& echo inside >"$DIR/src/file"',
  });
  return { helper, bundle };
}

function writeConfig(bundle: string, root: string, mounts: unknown[]): string {
  const path = `${bundle}/config.json`;
  Deno.writeTextFileSync(
    path,
    JSON.stringify({
      ociVersion: "1.2.0",
      root: { path: root },
      mounts,
      linux: { uidMappings: MAP, gidMappings: MAP },
    }),
  );
  return path;
}

mountTest("container-mounts mounts a config's bind mounts into a namespace", async (fx) => {
  const { helper: h, bundle } = await container(fx);
  await using helper = h;
  const dir = helper.dir;
  const config = writeConfig(bundle, `${dir}/rootfs`, [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/data", type: "bind", source: `${dir}/src`, options: ["rbind", "ro", "idmap"] },
    {
      destination: "/shared",
      type: "bind",
      source: "relative",
      options: ["bind", "nosuid", "nodev", "rshared"],
    },
  ]);
  const { code, out, err } = await run("--rootfs", config, String(helper.pid));
  assert.equal(code, 0, err);
  assert.deepEqual(out.trim().split("\n"), [
    "skip   /proc: proc is not a bind mount",
    `ok     ${dir}/rootfs/data <- ${dir}/src (rbind,ro,idmap)`,
    `ok     ${dir}/rootfs/shared <- relative (bind,nosuid,nodev,rshared)`,
  ]);
  const data = mountAt(`${dir}/rootfs/data`, helper.pid)!;
  assert.deepEqual(data.options.sort(), ["idmapped", "relatime", "ro"]);
  assert.equal(Deno.statSync(helper.inside(`${dir}/rootfs/data/file`)).uid, 10000);
  const shared = mountAt(`${dir}/rootfs/shared`, helper.pid)!;
  assert.deepEqual(shared.options.sort(), ["nodev", "nosuid", "relatime", "rw"]);
  assert.equal(propagation(shared), "shared");
  assert.equal(
    Deno.readTextFileSync(helper.inside(`${dir}/rootfs/shared/file`)),
    "from the bundle\n",
  );
  assert.equal(mountAt(`${dir}/rootfs/data`), undefined, "nothing mounted here");
});

mountTest("container-mounts --rootfs makes mount points the container root's", async (fx) => {
  const { helper: h, bundle } = await container(fx);
  await using helper = h;
  const dir = helper.dir;
  const config = writeConfig(bundle, `${dir}/rootfs`, [
    { destination: "/made/deep", type: "bind", source: `${dir}/src`, options: ["bind"] },
  ]);
  const { code, out, err } = await run("--rootfs", config, String(helper.pid));
  assert.equal(code, 0, err);
  assert.equal(out, `ok     ${dir}/rootfs/made/deep <- ${dir}/src (bind)\n`);
  await using ns = await openMountNamespace(helper.nsPath);
  await ns.unmount(`${dir}/rootfs/made/deep`);
  // The host ids of the container's 0 in the config's mappings (0:10000:2000).
  for (const made of ["made", "made/deep"]) {
    const { uid, gid } = Deno.statSync(helper.inside(`${dir}/rootfs/${made}`));
    assert.deepEqual([uid, gid], [10000, 10000], made);
  }
});

mountTest("container-mounts reports a failed mount and goes on, exit 1", async (fx) => {
  const { helper: h, bundle } = await container(fx);
  await using helper = h;
  const dir = helper.dir;
  const config = writeConfig(bundle, `${dir}/rootfs`, [
    { destination: "/missing", type: "bind", source: `${dir}/nope`, options: ["bind"] },
    { destination: "/data", type: "bind", source: `${dir}/src`, options: ["bind"] },
  ]);
  const { code, out } = await run("--rootfs", config, String(helper.pid));
  assert.equal(code, 1);
  assert.deepEqual(out.trim().split("\n"), [
    `error  ${dir}/rootfs/missing <- ${dir}/nope (bind): open src=${dir}/nope: ` +
    'ENOENT: No such file or directory (with sourceIn: "namespace" the source is looked up ' +
    "inside the mount namespace, where host paths are gone after pivot_root; a host path " +
    'needs sourceIn: "caller")',
    `ok     ${dir}/rootfs/data <- ${dir}/src (bind)`,
  ]);
});

Deno.test("container-mounts: bad usage is one line and exit code 2", async () => {
  for (const args of [[], ["config.json"], ["config.json", "x"], ["--nope", "a", "1"]]) {
    const { code, out, err } = await run(...args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "");
    assert.match(err, /^container-mounts: [^\n]+\n$/);
  }
  const help = await run("--help");
  assert.equal(help.code, 0);
  assert.match(
    help.out,
    /^Usage: container-mounts \[--rootfs\] \[--replace\] \[--dry-run\] <config.json> <pid>/,
  );
  const unknown = await run("--nope", "a", "1");
  assert.equal(unknown.err, "container-mounts: unknown option --nope (see --help)\n");
});

Deno.test("parseCommandLine() and specContext() read the command line and config", () => {
  assert.deepEqual(parseCommandLine(["c.json", "42"]), {
    config: "c.json",
    pid: 42,
    rootfs: false,
    replace: false,
    dryRun: false,
  });
  assert.deepEqual(parseCommandLine(["--rootfs", "--replace", "--dry-run", "c.json", "42"]), {
    config: "c.json",
    pid: 42,
    rootfs: true,
    replace: true,
    dryRun: true,
  });
  assert.deepEqual(
    specContext({
      linux: {
        uidMappings: MAP,
        namespaces: [{ type: "mount" }, { type: "user", path: "/proc/7/ns/user" }],
      },
    }, "/b"),
    { cwd: "/b", usernsPath: "/proc/7/ns/user", uidMappings: MAP },
  );
  // A running container's config without mappings: its process's namespace.
  assert.deepEqual(specContext({}, "/b", 42), { cwd: "/b", usernsPath: "/proc/42/ns/user" });
  assert.deepEqual(specContext({}, "/b"), { cwd: "/b" });
});

Deno.test("refusal() keeps masks always, and mount points unless --replace", () => {
  const guard = {
    protected: [["/sys/firmware", "linux.maskedPaths"], ["/proc/sys", "linux.readonlyPaths"]],
    mountPoints: ["/", "/sys", "/sys/fs/cgroup", "/dev", "/dev/shm"],
  } as { protected: [string, string][]; mountPoints: string[] };
  const why = (place: string, replace = false, requested = place): string | undefined =>
    refusal(place, requested, guard, replace);
  assert.equal(why("/sys/firmware"), "in linux.maskedPaths");
  assert.equal(why("/proc/sys/x", true), "under /proc/sys, which is in linux.readonlyPaths");
  assert.equal(why("/proc", true), "would cover /proc/sys, which is in linux.readonlyPaths");
  assert.equal(why("/data", true, "/proc/sys/link"), why("/proc/sys/link"), "as asked too");
  assert.match(why("/dev/shm")!, /^already a mount point/);
  assert.match(why("/")!, /^would cover \/sys\/firmware/);
  assert.equal(
    why("/sys/fs"),
    "would hide 1 mount(s) under it, /sys/fs/cgroup first (--replace stacks anyway)",
  );
  assert.equal(why("/dev/shm", true), undefined);
  assert.equal(why("/data"), undefined);
  assert.equal(resolveInRoot(undefined, "//dev/./x/../../../shm/"), "/shm");
});

mountTest(
  "container-mounts into a running container, with a rootless runtime's config",
  async (fx) => {
    await using running = await startContainer({ userns: CONTAINER_USERNS });
    const bundle = fx.mkdir("bundle");
    fx.mkdir("bundle/vol");
    fx.file("bundle/vol/file", 0, 0);
    const host = fx.mkdir("host");
    fx.file("host/file", 0, 0);
    // As `crun spec --rootless` writes it: an idmap mount, no linux.uidMappings.
    const config = `${bundle}/config.json`;
    Deno.writeTextFileSync(
      config,
      JSON.stringify({
        ociVersion: "1.0.0",
        root: { path: "rootfs" },
        mounts: [
          { destination: "/proc", type: "proc", source: "proc" },
          { destination: "/ro", type: "bind", source: host, options: ["rbind", "ro"] },
          { destination: "/mapped", type: "bind", source: "vol", options: ["rbind", "idmap"] },
        ],
        linux: { namespaces: [{ type: "pid" }, { type: "mount" }, { type: "user" }] },
      }),
    );
    const pid = String(running.pid);
    const dry = await run("--dry-run", config, pid);
    assert.equal(dry.code, 0, dry.err);
    assert.deepEqual(dry.out.trim().split("\n"), [
      "skip   /proc: proc is not a bind mount",
      `would  /ro <- ${host} (MS_RDONLY|MS_BIND|MS_REC)`,
      `would  /mapped <- ${bundle}/vol (MS_BIND|MS_REC userns=/proc/${pid}/ns/user)`,
    ]);
    assert.equal(mountAt("/ro", running.pid), undefined, "a dry run mounts nothing");

    const { code, out, err } = await run(config, pid);
    assert.equal(code, 0, err);
    assert.deepEqual(out.trim().split("\n"), [
      "skip   /proc: proc is not a bind mount",
      `ok     /ro <- ${host} (rbind,ro)`,
      `ok     /mapped <- vol (rbind,idmap)`,
    ]);
    assert.ok(mountAt("/ro", running.pid)?.options.includes("ro"));
    const write = await running.exec(["sh", "-c", "echo x >/ro/file"]);
    assert.notEqual(write.code, 0, "read-only inside");
    // Our 0 on disk is the container's root through the mount, nobody without.
    const owner = async (path: string) => (await running.exec(["stat", "-c", "%u", path])).stdout;
    assert.equal(await owner("/mapped/file"), "0\n");
    assert.equal(await owner("/ro/file"), "65534\n");
  },
  NO_CONTAINER,
);

/** As root, `runc spec`; rootless, `runc spec --rootless` (the other can't run there). */
const ROOTLESS = MODE === "rootless";

/** The text of a process's /proc/PID/mountinfo. */
function mountinfoText(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/mountinfo`);
}

/** What container-mounts says of a runtime's own mount. */
function expectedSkip(spec: { destination: string; type?: string; options?: string[] }): string {
  const bind = spec.type === "bind" || spec.options?.some((o) => o === "bind" || o === "rbind");
  if (!bind) return `skip   ${spec.destination}: ${spec.type} is not a bind mount`;
  if (spec.destination === "/sys") {
    return "skip   /sys: would cover /sys/firmware, which is in linux.maskedPaths";
  }
  return `skip   ${spec.destination}: already a mount point in the container ` +
    "(--replace stacks on it)";
}

for (const rootless of ROOTLESS ? [true] : [false, true]) {
  mountTest(
    `container-mounts with a runc${
      rootless ? " --rootless" : ""
    } container's own config.json changes nothing, and says why`,
    async (fx) => {
      const volume = fx.mkdir("volume");
      await using container = await startRunc({
        rootless,
        mounts: [{ destination: "/srv", type: "bind", source: volume, options: ["rbind", "ro"] }],
      });
      const config = JSON.parse(Deno.readTextFileSync(container.config));
      const before = mountinfoText(container.pid);
      for (const args of [["--dry-run"], []]) {
        const { code, out, err } = await run(...args, container.config, String(container.pid));
        assert.equal(code, 0, err);
        assert.deepEqual(out.trim().split("\n"), config.mounts.map(expectedSkip));
        assert.equal(mountinfoText(container.pid), before, "not one mount more");
      }
    },
    NO_RUNC,
  );
}

/** A config of our own for a runc container: its masks, and these bind mounts. */
function configFor(fx: Fixture, container: RuncContainer, name: string, mounts: unknown[]): string {
  const { linux } = JSON.parse(Deno.readTextFileSync(container.config));
  const path = `${fx.dir}/${name}.json`;
  Deno.writeTextFileSync(path, JSON.stringify({ ociVersion: "1.0.2", mounts, linux }));
  return path;
}

mountTest(
  "container-mounts keeps a runc container's masks and mounts, and names where a mount landed",
  async (fx) => {
    await using container = await startRunc({ rootless: ROOTLESS });
    const exec = await container.exec([
      "sh",
      "-c",
      "mkdir -p /tmp/landing && ln -s /tmp/landing /vlink && ln -s /sys/firmware /sneaky",
    ]);
    assert.equal(exec.code, 0, exec.stderr);
    const source = fx.mkdir("src");
    fx.file("src/file", 0, 0);
    const bind = (destination: string, ...options: string[]) => ({
      destination,
      type: "bind",
      source,
      options: options.length ? options : ["bind"],
    });
    const config = configFor(fx, container, "refused", [
      bind("/proc/kcore"),
      bind("/proc/sys/kernel"),
      bind("/sneaky"),
      bind("/sys", "rbind"),
      bind("/dev/shm"),
      bind("/sys/fs"),
      bind("/vlink"),
      bind("/new/dir", "rbind", "ro"),
    ]);
    const pid = container.pid;
    const before = mountInfo(pid);
    const { code, out, err } = await run(config, String(pid));
    assert.equal(code, 0, err);
    const lines = out.trim().split("\n");
    assert.match(
      lines.splice(5, 1)[0],
      /^skip {3}\/sys\/fs: would hide \d+ mount\(s\) under it, \/sys\/fs\/\S+ first \(--replace stacks anyway\)$/,
    );
    assert.deepEqual(lines, [
      "skip   /proc/kcore: in linux.maskedPaths",
      "skip   /proc/sys/kernel: under /proc/sys, which is in linux.readonlyPaths",
      "skip   /sys/firmware (for /sneaky): in linux.maskedPaths",
      "skip   /sys: would cover /sys/firmware, which is in linux.maskedPaths",
      "skip   /dev/shm: already a mount point in the container (--replace stacks on it)",
      `ok     /tmp/landing (for /vlink) <- ${source} (bind)`,
      `ok     /new/dir <- ${source} (rbind,ro)`,
    ]);
    const ids = new Set(before.map((m) => m.id));
    const added = mountInfo(pid).filter((m) => !ids.has(m.id)).map((m) => m.mountPoint);
    assert.deepEqual(added, ["/tmp/landing", "/new/dir"]);
    assert.equal((await container.exec(["cat", "/vlink/file"])).stdout, "src/file");

    // --replace stacks on a mount point on purpose; masks stay.
    const replace = configFor(fx, container, "replace", [
      bind("/dev/shm"),
      bind("/sys", "rbind"),
      bind("/proc/kcore"),
    ]);
    const stacked = await run("--replace", replace, String(pid));
    assert.equal(stacked.code, 0, stacked.err);
    assert.deepEqual(stacked.out.trim().split("\n"), [
      `ok     /dev/shm <- ${source} (bind)`,
      "skip   /sys: would cover /sys/firmware, which is in linux.maskedPaths",
      "skip   /proc/kcore: in linux.maskedPaths",
    ]);
    assert.equal((await container.exec(["cat", "/dev/shm/file"])).stdout, "src/file");
  },
  NO_RUNC,
);

/** Why the test user can't run this Deno, or `undefined` if it can. */
const NO_USER_DENO: string | undefined = NO_TEST_USER ?? (() => {
  const { success } = new Deno.Command("runuser", {
    args: ["-u", TEST_USER!, "--", Deno.execPath(), "--version"],
    stdout: "null",
    stderr: "null",
  }).outputSync();
  return success ? undefined : `${TEST_USER} can't run ${Deno.execPath()}`;
})();

/** A copy of the module and the tool that `uid` can read, in the fixture. */
function stageTool(fx: Fixture, uid: number, gid: number): string {
  const root = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
  fx.mkdir("tool");
  const copy = (rel: string): void => {
    const info = Deno.statSync(`${root}/${rel}`);
    if (info.isDirectory) {
      Deno.mkdirSync(`${fx.dir}/tool/${rel}`, { recursive: true });
      for (const entry of Deno.readDirSync(`${root}/${rel}`)) copy(`${rel}/${entry.name}`);
    } else Deno.copyFileSync(`${root}/${rel}`, `${fx.dir}/tool/${rel}`);
    Deno.chownSync(`${fx.dir}/tool/${rel}`, uid, gid);
  };
  ["mod.ts", "lib", "ffi", "examples"].forEach(copy);
  fx.mkdir("deno-dir");
  Deno.chownSync(`${fx.dir}/deno-dir`, uid, gid);
  return `${fx.dir}/tool/examples/container_mounts.ts`;
}

mountTest(
  "the README's rootless command: nsenter --preserve-credentials into a runc --rootless container",
  async (fx) => {
    await using container = await startRunc({ rootless: true, user: TEST_USER });
    const { uid, gid } = Deno.statSync(container.bundle) as { uid: number; gid: number };
    Deno.chmodSync(fx.dir, 0o755);
    const tool = stageTool(fx, uid, gid);
    const volume = fx.mkdir("volume");
    fx.file("volume/file", uid, gid);
    Deno.chownSync(volume, uid, gid);
    const config = configFor(fx, container, "volume", [
      { destination: "/vol", type: "bind", source: volume, options: ["rbind", "ro"] },
    ]);
    const pid = String(container.pid);
    const command = (...nsenter: string[]) =>
      new Deno.Command("runuser", {
        args: [
          ...["-u", TEST_USER!, "--", "env", `DENO_DIR=${fx.dir}/deno-dir`, `HOME=${fx.dir}`],
          ...["nsenter", "--target", pid, "--user", ...nsenter, "unshare", "--mount"],
          ...[Deno.execPath(), "run", ...FLAGS, tool, config, pid],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    // runc denies setgroups in a rootless container's user namespace, and
    // nsenter calls it unless told to keep the caller's groups.
    assert.equal(Deno.readTextFileSync(`/proc/${pid}/setgroups`), "deny\n");
    const plain = await command();
    assert.notEqual(plain.code, 0);
    assert.match(
      new TextDecoder().decode(plain.stderr),
      /setgroups failed: Operation not permitted/,
    );
    const preserved = await command("--preserve-credentials");
    const [out, err] = [preserved.stdout, preserved.stderr].map((b) => new TextDecoder().decode(b));
    assert.equal(preserved.code, 0, err);
    assert.equal(out, `ok     /vol <- ${volume} (rbind,ro)\n`);
    const write = await container.exec(["sh", "-c", "echo x >/vol/file"]);
    assert.match(write.stderr, /Read-only file system/);
    // The user's files are the container's root's.
    assert.equal((await container.exec(["stat", "-c", "%u:%g", "/vol/file"])).stdout, "0:0\n");
  },
  NO_RUNC,
  NO_USER_DENO,
);
