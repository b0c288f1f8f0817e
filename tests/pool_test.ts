import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { O_CLOEXEC } from "../ffi/constants.ts";
import { Handles, type Mapping } from "../mod.ts";
import { childCount, countOps, namespaceMaps, spawns, until, withSpawnHooks } from "./_process.ts";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids, fdFlags, leavesNothing, openFds } from "./_leaks.ts";
import { BASE, simpleMapping } from "./_mappings.ts";

/** A mapping of one id, distinct for each `n`. */
function one(n: number): Mapping {
  return simpleMapping(0, 20000 + n, 1);
}

Deno.test("prespawn must be a non-negative integer; 0 means no pool", async () => {
  assert.throws(() => new Handles({ prespawn: 1.5 }), /^TypeError: Invalid prespawn: .*1\.5$/);
  const { ops } = await countOps(async () => {
    await using handles = new Handles({ prespawn: 0 });
    assert.equal(handles.idle, 0);
    await handles.ready();
  });
  assert.equal(spawns(ops), 0, "no pool, no helper");
});

Deno.test({
  ...skipUnless(
    "a pool fills at once, and a new mapping is served from it without a spawn",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 2 });
    assert.equal(childPids().length, 2, "both helpers spawned by the constructor");
    await handles.ready();
    assert.equal(handles.idle, 2);
    const { result: fd, ops } = await countOps(() => handles.get(simpleMapping()));
    using _ = fd;
    assert.equal(spawns(ops), 0, "no spawn on the critical path");
    assert.ok(fdFlags(fd.fd) & O_CLOEXEC, "the fd is close-on-exec");
    assert.deepEqual(await namespaceMaps(fd.fd), {
      uid: "0 10000 2000",
      gid: "0 10000 2000",
      setgroups: "deny",
    });
    assert.equal(handles.size, 1, "cached as a spawned one would be");
  }),
});

Deno.test({
  ...skipUnless(
    "a pooled get resolves before its helper exits; settled() waits for the exit",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 2 });
    await handles.ready();
    const pooled = childPids();
    const { ops } = await countOps(async () => {
      using _ = await handles.get(one(1));
      // Nothing has been reaped yet: the get did not wait for its helper.
      assert.deepEqual(childPids().sort(), [...pooled].sort(), "its helper still runs");
      await handles.settled();
      const left = childPids().filter((pid) => pooled.includes(pid));
      assert.equal(left.length, 1, "settled() waited until the helper it took was reaped");
      await until(() => handles.idle === 2, "the refill");
    });
    assert.equal(spawns(ops), 1, "one helper replaced the one taken, and the get spawned none");
    assert.equal(childPids().length, 2);
  }),
});

Deno.test({
  ...skipUnless(
    "pooled gets for many mappings: a pool of 2 serves most, and nothing leaks",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 2 });
    for (let i = 0; i < 12; i++) {
      await handles.ready();
      const { result: fd, ops } = await countOps(() => handles.get(one(i)));
      fd.close();
      assert.equal(spawns(ops), 0, `get ${i} spawned`);
    }
    assert.equal(handles.size, 12);
    const fds = await Promise.all([one(20), one(21), one(22), one(23)].map((m) => handles.get(m)));
    for (const fd of fds) fd.close();
    assert.equal(handles.size, 16, "more concurrent gets than pooled helpers still succeed");
  }),
});

Deno.test({
  ...skipUnless(
    "release() ends and reaps pooled helpers; the Handles stays usable and refills",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 3 });
    await handles.ready();
    const first = childPids();
    assert.equal(first.length, 3);
    handles.release();
    assert.equal(handles.idle, 0);
    await until(() => childPids().length === 0, "the pooled helpers to be reaped");
    const { ops } = await countOps(async () => {
      using fd = await handles.get(simpleMapping());
      assert.match(Deno.readLinkSync(`/proc/self/fd/${fd.fd}`), /^user:/);
    });
    assert.equal(spawns(ops), 1, "after release, a get spawns its own helper");
    await handles.ready();
    assert.equal(handles.idle, 3, "and the pool refills");
    assert.ok(childPids().every((pid) => !first.includes(pid)));
  }),
});

Deno.test({
  ...skipUnless("await using reaps pooled helpers, even mid-start", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    {
      await using handles = new Handles({ prespawn: 4 });
      assert.equal(childPids().length, 4, "still starting");
      assert.equal(handles.idle, 0);
    }
    assert.deepEqual(childPids(), []);
    {
      await using handles = new Handles({ prespawn: 2 });
      await handles.ready();
    }
    assert.deepEqual(childPids(), []);
  }),
});

Deno.test({
  ...skipUnless(
    "release() racing a refill: nothing is left behind, and nothing refills",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 2 });
    await handles.ready();
    // The get schedules a refill once it settles; release() comes first.
    const pending = handles.get(one(1));
    handles.release();
    (await pending).close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(handles.idle, 0, "no refill after release()");
    await until(() => childPids().length === 0, "every helper to be reaped");
    // And a refill that is already spawning when release() comes.
    await handles.ready();
    (await handles.get(one(2))).close();
    await until(() => childPids().length === 2, "the refill to spawn");
    handles.release();
  }),
});

Deno.test({
  ...skipUnless("gets, pooled or not, never call setTimeout", NO_ID_RANGE),
  fn: async () => {
    // Deno loads its Node timers on a process's first setTimeout (8-18 ms),
    // which would fall on a program's first get; in a program of its own,
    // a setTimeout that throws must not be reached.
    const mod = new URL("../mod.ts", import.meta.url).href;
    const script = `globalThis.setTimeout = () => { throw new Error("setTimeout was called"); };
      const { Handles } = await import("${mod}");
      const one = (n) => [{ containerID: 0, hostID: ${BASE} + n, size: 1 }];
      await using plain = new Handles();
      (await plain.get({ uidMappings: one(0), gidMappings: one(0) })).close();
      await using pooled = new Handles({ prespawn: 1 });
      await pooled.ready();
      (await pooled.get({ uidMappings: one(1), gidMappings: one(1) })).close();
      await pooled.ready();
      (await pooled.get({ uidMappings: one(2), gidMappings: one(2) })).close();
      await pooled.settled();
      console.log("done");`;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.equal(new TextDecoder().decode(stdout).trim(), "done");
  },
});

Deno.test({
  ...skipUnless(
    "a pooled get only writes its two maps: the rest was done while it waited",
    NO_ID_RANGE,
  ),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 1 });
    await handles.ready();
    const { result: fd, ops } = await countOps(() => handles.get(simpleMapping()));
    using _ = fd;
    assert.equal(ops.get("write"), 2, "uid_map and gid_map");
    assert.equal(ops.get("open"), undefined, "no open: setgroups, ns/user and the maps were done");
    assert.equal(ops.get("spawn unshare"), undefined);
    assert.deepEqual(await namespaceMaps(fd.fd), {
      uid: "0 10000 2000",
      gid: "0 10000 2000",
      setgroups: "deny",
    });
  }),
});

Deno.test({
  ...skipUnless("concurrent gets for one mapping share one pooled helper", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 2 });
    await handles.ready();
    const fds = await Promise.all(Array.from({ length: 10 }, () => handles.get(one(7))));
    for (const fd of fds) fd.close();
    assert.equal(handles.idle, 1, "one helper taken, before the refill");
  }),
});

Deno.test({
  ...skipUnless("distinct mappings requested together spawn together", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    await using handles = new Handles();
    const { result: spawnedAtOnce, ops } = await countOps(async () => {
      const pending = Array.from({ length: 8 }, (_, i) => handles.get(one(i)));
      const counted = childPids().length; // before anything is awaited
      for (const fd of await Promise.all(pending)) fd.close();
      return counted;
    });
    assert.equal(spawns(ops), 8);
    assert.equal(spawnedAtOnce, 8, "every helper runs before the first is awaited");
  }),
});

Deno.test({
  ...skipUnless("pooled helpers inherit only their stdio, not each other's pipes", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    await using handles = new Handles({ prespawn: 3 });
    await handles.ready();
    const inherited = [...openFds()].filter((fd) => fd > 2 && !(fdFlags(fd) & O_CLOEXEC));
    const expected = ["0", "1", "2", ...inherited.map(String)].sort();
    for (const pid of childPids()) {
      const fds = [...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) => e.name).sort();
      assert.deepEqual(fds, expected, `helper ${pid}`);
    }
  }),
});

Deno.test({
  ...skipUnless("idle pooled helpers don't keep Deno running, and exit when it does", NO_ID_RANGE),
  async fn(): Promise<void> {
    const mod = new URL("../mod.ts", import.meta.url).href;
    const dir = Deno.makeTempDirSync({ prefix: "mountfd-pool-" });
    const script = `${dir}/forget.ts`;
    Deno.writeTextFileSync(
      script,
      `import { Handles } from ${JSON.stringify(mod)};
const handles = new Handles({ prespawn: 2 });
await handles.ready();
console.log(Deno.readTextFileSync("/proc/self/task/" + Deno.pid + "/children").trim());
// No release(): the program just ends.
`,
    );
    try {
      const started = performance.now();
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--no-lock", script],
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(20_000),
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      assert.ok(performance.now() - started < 15_000, "it exited on its own");
      const pids = new TextDecoder().decode(stdout).trim().split(/\s+/).map(Number);
      assert.equal(pids.length, 2);
      await until(() => pids.every(exited), "the orphaned helpers to exit");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

/** Whether a process is gone, or a zombie (exited, and not yet reaped by init). */
function exited(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

Deno.test({
  ...skipUnless("maxSpawns bounds pooled helpers and spawned ones together", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    let most = 0;
    const hooks = { before: () => void (most = Math.max(most, childCount() + 1)) };
    await withSpawnHooks(hooks, async () => {
      await using handles = new Handles({ prespawn: 3, maxSpawns: 4 });
      await handles.ready();
      const fds = await Promise.all(Array.from({ length: 40 }, (_, i) => handles.get(one(i))));
      for (const fd of fds) fd.close();
      await handles.ready();
      assert.equal(handles.size, 40);
    });
    assert.ok(most <= 4, `${most} helpers at once`);
    assert.ok(most >= 3, `${most} helpers at once: the pool filled`);
  }),
});

Deno.test("prespawn may not exceed maxSpawns", () => {
  assert.throws(
    () => new Handles({ prespawn: 9 }),
    /^TypeError: Invalid prespawn: expected at most maxSpawns \(8\), got 9$/,
  );
  assert.throws(
    () => new Handles({ maxSpawns: 0 }),
    /^TypeError: Invalid maxSpawns: expected a positive integer, got 0$/,
  );
});
