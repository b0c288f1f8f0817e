import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Handles } from "../mod.ts";
import { parseCommandLine } from "../examples/mount_idmapped.ts";
import { buildTree, mountTest } from "./_mounts.ts";
import { owner } from "./_fixture.ts";
import { simpleMapping } from "./_mappings.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SOURCE = "examples/mount_idmapped.ts";
const TASKS = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).tasks;

/** Runs the tool as `deno task mount-idmapped` does, in this mount namespace. */
async function tool(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--allow-run=unshare,nsenter", "--allow-read", SOURCE, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, out: decode(stdout), err: decode(stderr) };
}

Deno.test("deno task mount-idmapped runs the tool from its sources", () => {
  assert.equal(
    TASKS["mount-idmapped"],
    `deno run --allow-ffi --allow-run=unshare,nsenter --allow-read ${SOURCE}`,
  );
});

mountTest("mount-idmapped mounts, and the owners show through the mount", async (fx) => {
  buildTree(fx);
  const target = fx.mkdir("mnt");
  const { code, err } = await tool(
    "--map-mount=b:100:10000:200",
    `${fx.dir}/source-multi1`,
    target,
  );
  fx.track(target);
  assert.equal(code, 0, err);
  assert.equal(err, "");
  assert.equal(owner(`${target}/foo.txt`), "10000:10111");
  assert.equal(owner(`${target}/baz.txt`), "10002:10133");
});

mountTest("mount-idmapped with separate uid and gid maps, and --recursive", async (fx) => {
  buildTree(fx);
  const target = fx.mkdir("mnt");
  const { code, err } = await tool(
    "--map-mount=u:100:11000:300",
    "--map-mount=g:200:12000:100",
    "--recursive",
    `${fx.dir}/mnt-subtree`,
    target,
  );
  fx.track(target);
  assert.equal(code, 0, err);
  assert.equal(owner(`${target}/foo.txt`), "11000:12011");
  assert.equal(owner(`${target}/multi2/foo.txt`), "11100:12011", "submounts are mapped too");
});

mountTest("mount-idmapped takes a user namespace path", async (fx) => {
  buildTree(fx);
  using handles = new Handles();
  using userns = await handles.get(simpleMapping(0, 7000, 1000));
  const target = fx.mkdir("mnt");
  const { code, err } = await tool(
    `--map-mount=/proc/${Deno.pid}/fd/${userns.fd}`,
    `${fx.dir}/source-multi1`,
    target,
  );
  fx.track(target);
  assert.equal(code, 0, err);
  assert.equal(owner(`${target}/foo.txt`), "7100:7211");
});

mountTest("mount-idmapped prints the MountError and exits 1 when a syscall fails", async (fx) => {
  const missing = `${fx.dir}/missing`;
  const { code, out, err } = await tool("--map-mount=b:0:10000:10", missing, fx.mkdir("mnt"));
  assert.equal(code, 1);
  assert.equal(out, "");
  assert.equal(
    err,
    `mount-idmapped: open_tree(OPEN_TREE_CLONE) src=${missing}: ENOENT: No such file or directory\n`,
  );
});

Deno.test("mount-idmapped --help prints the usage", async () => {
  const { code, out } = await tool("--help");
  assert.equal(code, 0);
  assert.match(out, /^Usage: mount-idmapped --map-mount=<idmap>/);
  assert.match(out, /--recursive/);
});

Deno.test("mount-idmapped: bad usage is one clear line and exit code 2", async (t) => {
  const cases: [string[], string][] = [
    [[], "expected <source> and <target>, got 0 argument(s)"],
    [["/a", "/b"], "at least one --map-mount is needed"],
    [["--map-mount=b:0:1:1", "/a"], "expected <source> and <target>, got 1 argument(s)"],
    [
      ["--map-mount=x:0:1:1", "/a", "/b"],
      'invalid --map-mount "x:0:1:1": expected <b|u|g>:<from>:<to>:<range> or /proc/<pid>/ns/user',
    ],
    [["--map-mount=b:0:1", "/a", "/b"], 'invalid --map-mount "b:0:1"'],
    [["--map-mount=u:0:1:1", "/a", "/b"], "no gid mappings: add a --map-mount=g:... or use b:..."],
    [["--map-mount=g:0:1:1", "/a", "/b"], "no uid mappings: add a --map-mount=u:... or use b:..."],
    [
      ["--map-mount=/proc/1/ns/user", "--map-mount=b:0:1:1", "/a", "/b"],
      "a user namespace path can't be combined with other --map-mount",
    ],
    [
      ["--map-mount=b:0:1:0", "/a", "/b"],
      "validate dst=/b: invalid idMapping.uidMappings[0].size: expected an integer from 1 to 4294967295, got 0",
    ],
    [
      ["--map-mount=b:0:100:10", "--map-mount=b:5:500:10", "/a", "/b"],
      "validate dst=/b: invalid idMapping.uidMappings: entries 0 and 1 overlap in containerID",
    ],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(none)", async () => {
      const { code, out, err } = await tool(...args);
      assert.equal(code, 2, err);
      assert.equal(out, "");
      const lines = err.trimEnd().split("\n");
      assert.equal(lines.length, 1, err);
      assert.ok(lines[0].startsWith(`mount-idmapped: ${message}`), lines[0]);
    });
  }
});

Deno.test("mount-idmapped: an unknown or malformed option is one line that names it and --help", async (t) => {
  const help = "see mount-idmapped --help";
  const cases: [string[], string][] = [
    [["--bogus", "/a", "/b"], `unknown option "--bogus": ${help}`],
    [["--map-mount=b:0:1:1", "/a", "/b", "-x"], `unknown option "-x": ${help}`],
    [["--bogus=1", "/a", "/b"], `unknown option "--bogus": ${help}`],
    [["--map-caller=b:0:1:1", "/a", "/b"], `unknown option "--map-caller": ${help}`],
    [["--recursive=yes", "/a", "/b"], `option --recursive takes no value: ${help}`],
    [["--help=1"], `option --help takes no value: ${help}`],
    [["/a", "/b", "--map-mount"], `option --map-mount needs a value: ${help}`],
    [["--map-mount=b:0:1:1"], `expected <source> and <target>, got 0 argument(s): ${help}`],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const { code, out, err } = await tool(...args);
      assert.equal(out, "");
      assert.equal(err, `mount-idmapped: ${message}\n`);
      assert.equal(code, 2);
    });
  }
});

Deno.test("parseCommandLine() builds the mount", () => {
  assert.deepEqual(parseCommandLine(["--map-mount=b:0:100000:65536", "/src", "/dst"]), {
    source: "/src",
    destination: "/dst",
    flags: 0x1000,
    idMapping: {
      recursive: false,
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    },
  });
  assert.equal(parseCommandLine(["-h"]), "help");
  assert.equal(parseCommandLine(["--recursive", "/a", "--help"]), "help");
});

Deno.test("parseCommandLine() takes a separate value, --, and a relative target", () => {
  const mount = parseCommandLine([
    "--map-mount",
    "u:0:1:1",
    "--map-mount=g:0:2:1",
    "--",
    "-s",
    "t",
  ]);
  assert.ok(mount !== "help");
  assert.equal(mount.source, "-s");
  assert.equal(mount.destination, `${Deno.cwd()}/t`);
  assert.deepEqual(mount.idMapping?.uidMappings, [{ containerID: 0, hostID: 1, size: 1 }]);
  assert.deepEqual(mount.idMapping?.gidMappings, [{ containerID: 0, hostID: 2, size: 1 }]);
});
