/**
 * The programs the module runs: found in the system directories before
 * PATH, run by absolute path, with the run permission checked before
 * anything runs. Most cases run tests/_userns_probe.ts in a process of its
 * own, with other permissions, another PATH or hidden system directories.
 */

import assert from "node:assert/strict";
import { findProgram, Program, SYSTEM_DIRS, UNSHARE } from "../lib/userns/programs.ts";
import { PROBE, type ProbeResult, runProbe } from "./_process.ts";

/** Runs the probe with Deno's permission flags. */
function probe(flags: string[], mode = "get", env?: Record<string, string>): Promise<ProbeResult> {
  return runProbe(Deno.execPath(), ["run", "--no-prompt", ...flags, PROBE, mode], env);
}

/** A directory with a fake `unshare` that leaves a mark when it runs. */
function fakeUnshare(): { dir: string; mark: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-path-" });
  const mark = `${dir}/ran`;
  Deno.writeTextFileSync(`${dir}/unshare`, `#!/bin/sh\necho fake > ${mark}\nexit 1\n`, {
    mode: 0o755,
  });
  return { dir, mark, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("findProgram looks in the directories in order, and leaves the rest to PATH", () => {
  const base = Deno.makeTempDirSync({ prefix: "mountfd-dirs-" });
  try {
    for (const dir of ["a", "b", "c"]) Deno.mkdirSync(`${base}/${dir}`);
    Deno.writeTextFileSync(`${base}/b/tool`, "", { mode: 0o755 });
    Deno.writeTextFileSync(`${base}/c/tool`, "", { mode: 0o755 });
    const dirs = ["a", "b", "c"].map((dir) => `${base}/${dir}`);
    assert.equal(findProgram("tool", dirs), `${base}/b/tool`);
    assert.equal(findProgram("tool", [`${base}/a`]), "tool", "not found: a PATH lookup");
    assert.equal(findProgram("tool", [`${base}/missing`, `${base}/c`]), `${base}/c/tool`);
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});

Deno.test("unshare, cat and nsenter come from the system directories", () => {
  assert.deepEqual(SYSTEM_DIRS, ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]);
  for (const name of ["unshare", "cat", "nsenter"]) {
    const path = findProgram(name);
    assert.ok(SYSTEM_DIRS.some((dir) => path === `${dir}/${name}`), path);
  }
  assert.equal(UNSHARE.path, findProgram("unshare"));
  // Granted (--allow-all): no error, no query beyond the path's own.
  UNSHARE.checkPermission();
  new Program("true", "which does nothing").checkPermission();
});

Deno.test("a fake unshare earlier in PATH is not run", async () => {
  using fake = fakeUnshare();
  const result = await probe(["--allow-all"], "get", {
    PATH: `${fake.dir}:${Deno.env.get("PATH")}`,
  });
  assert.equal(exists(fake.mark), false, "the fake unshare did not run");
  assert.deepEqual(result, { ok: true, spawned: [UNSHARE.path] });
});

Deno.test("--allow-run=unshare with a fake one first in PATH: the flag that is needed is named", async () => {
  // Deno resolves --allow-run=unshare through PATH when it starts: to the fake.
  using fake = fakeUnshare();
  const result = await probe(["--allow-ffi", "--allow-run=unshare"], "get", {
    PATH: `${fake.dir}:${Deno.env.get("PATH")}`,
  });
  assert.equal(exists(fake.mark), false, "the fake unshare did not run");
  assert.deepEqual(result, {
    name: "NotCapable",
    message: `Handles.get needs --allow-run=${UNSHARE.path} to spawn ${UNSHARE.path}, ` +
      "which makes user namespaces for id mappings " +
      "(--allow-run=unshare allows another unshare, found first in PATH)",
    spawned: [],
  });
});

Deno.test("--allow-ffi --allow-run=unshare runs the unshare of the system directories", async () => {
  assert.deepEqual(await probe(["--allow-ffi", "--allow-run=unshare"]), {
    ok: true,
    spawned: [UNSHARE.path],
  });
});

Deno.test("a granted permission is queried once, not before every spawn", () => {
  const program = new Program("cat", "a test");
  const permissions = Deno.permissions;
  const real = permissions.querySync;
  let queries = 0;
  permissions.querySync = (descriptor) => {
    queries++;
    return real.call(permissions, descriptor);
  };
  try {
    program.checkPermission();
    const first = queries;
    program.checkPermission();
    program.checkPermission();
    assert.ok(first >= 1, "the first check queries");
    assert.equal(queries, first, "the next ones do not");
  } finally {
    permissions.querySync = real;
  }
});

Deno.test("a missing permission is found before anything is spawned", async () => {
  assert.deepEqual(await probe(["--allow-ffi"]), {
    name: "NotCapable",
    message: "Handles.get needs --allow-run=unshare to spawn unshare, " +
      "which makes user namespaces for id mappings",
    spawned: [],
  });
  // Without --allow-ffi the maps can't be written: no helper is spawned for
  // nothing.
  assert.deepEqual(await probe(["--allow-run=unshare"]), {
    name: "NotCapable",
    message: "Handles.get needs --allow-ffi to call open",
    spawned: [],
  });
});

Deno.test("unshare in no system directory and not in PATH: a clear error", async () => {
  // In a mount namespace of its own, empty tmpfs hide the system
  // directories (Deno itself is bound elsewhere first); PATH is empty.
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-hidden-" });
  try {
    const deno = `${dir}/deno`;
    const hide = SYSTEM_DIRS.map((d) => `[ -L ${d} ] || [ ! -d ${d} ] || mount -t tmpfs none ${d}`);
    const script = [
      `touch ${deno}`,
      `mount --bind ${Deno.execPath()} ${deno}`,
      // /usr/bin, which holds mount itself, goes last.
      ...hide.reverse(),
      `PATH=${dir} exec ${deno} run --allow-all ${PROBE} get`,
    ].join(" && ");
    const result = await runProbe(UNSHARE.path, [
      "--user",
      "--map-root-user",
      "--mount",
      "--",
      "/bin/sh",
      "-c",
      script,
    ]);
    assert.deepEqual(result, {
      name: "MountError",
      message: "spawn unshare: ENOENT: unshare was not found in /usr/bin, /bin, /usr/sbin, " +
        "/sbin or PATH",
      op: "spawn unshare",
      code: "ENOENT",
      spawned: ["unshare"],
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the helper inherits its stdio, and the fds Deno itself inherited without close-on-exec", async () => {
  // The README's "inherits nothing but its stdio" holds for every fd this
  // module (or Deno) opens, all close-on-exec; not for an fd the Deno process
  // was started with, such as 7 here, from the shell.
  const result = await runProbe("/bin/sh", [
    "-c",
    `exec 7</dev/null; exec "$0" run --allow-all ${PROBE} helper`,
    Deno.execPath(),
  ]);
  assert.ok(result.ok, JSON.stringify(result));
  const expected = ["0", "1", "2", ...result.inherited!.map(String)].sort();
  assert.ok(expected.includes("7"), "fd 7 reached Deno");
  assert.deepEqual(Object.keys(result.fds!).sort(), expected, JSON.stringify(result.fds));
  assert.equal(result.fds!["7"], "/dev/null");
  for (const fd of ["0", "1", "2"]) assert.match(result.fds![fd], /^pipe:/);
});
