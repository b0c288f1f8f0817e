/**
 * The userns helper failing at each stage: each gives a clear error and
 * leaves no fd and no process behind. (Missing unshare, a helper that dies
 * before it is ready, and one that never becomes ready are in userns_test.ts.)
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { errnoValue } from "../ffi/errno.ts";
import { setFaultHook } from "./_faults.ts";
import { Handles, MountError } from "../mod.ts";
import { namespaceMaps } from "./_process.ts";
import { childPids, newFds, NO_ID_RANGE, openFds, simpleMapping, skipUnless } from "./_util.ts";

const ignore = skipUnless(NO_ID_RANGE);

async function leavesNothing(fn: () => Promise<void>): Promise<void> {
  const before = openFds();
  await fn();
  assert.deepEqual(newFds(before), [], "fds leaked");
  assert.deepEqual(childPids(), [], "helper processes left");
}

Deno.test({
  name: "a helper that dies after it is ready, before its maps are written",
  ignore,
  fn: () =>
    leavesNothing(async () => {
      let killed = 0;
      setFaultHook((op) => {
        // The first open is the setgroups write: the helper is in its namespace.
        if (op === "open" && killed === 0) {
          for (const pid of childPids()) {
            Deno.kill(pid, "SIGKILL");
            killed = pid;
          }
          // Wait until the kernel has ended it: it is a zombie, not yet reaped.
          while (!/\) Z /.test(Deno.readTextFileSync(`/proc/${killed}/stat`)));
        }
        return undefined;
      });
      try {
        using handles = new Handles();
        // Until it is reaped, a dead helper's credentials still hold its user
        // namespace. As root, the maps and the open go through: a whole
        // namespace. Rootless, the kernel hides a zombie's /proc files
        // (EACCES): a clear error naming the file.
        let fd;
        try {
          fd = await handles.get(simpleMapping());
        } catch (error) {
          assert.ok(error instanceof MountError, String(error));
          assert.equal(error.op, "open");
          assert.equal(error.code, "EACCES");
          assert.equal(error.target, `/proc/${killed}/setgroups`);
          return;
        }
        using _ = fd;
        assert.deepEqual(await namespaceMaps(fd.fd), {
          uid: "0 10000 2000",
          gid: "0 10000 2000",
          setgroups: "deny",
        });
      } finally {
        setFaultHook(undefined);
      }
      assert.ok(killed > 0);
    }),
});

Deno.test({
  name: "a map write the kernel refuses",
  ignore,
  fn: () =>
    leavesNothing(async () => {
      // As root every host id is mappable, so the refusal is injected here;
      // the rootless suite also meets a real one (userns_test.ts).
      let writes = 0;
      setFaultHook((op) => op === "write" && ++writes === 2 ? errnoValue("EPERM") : undefined);
      try {
        using handles = new Handles();
        await assert.rejects(handles.get(simpleMapping()), {
          name: "MountError",
          op: "write",
          code: "EPERM",
          message: /^write dst=\/proc\/\d+\/uid_map: EPERM: .* \(writing "0 10000 2000"\)$/,
        });
      } finally {
        setFaultHook(undefined);
      }
    }),
});

const WAITER = fileURLToPath(new URL("./_helper_waiter.ts", import.meta.url));

Deno.test({
  name: "a helper outlives no Deno process: killed with SIGKILL, its helper exits by itself",
  ignore,
  async fn(): Promise<void> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", WAITER],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const helper = Number(text.trim());
    assert.ok(helper > 0, `the waiter printed its helper's pid: ${JSON.stringify(text)}`);
    assert.equal(alive(helper), true, "the helper waits while Deno is stuck");
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    const deadline = Date.now() + 5000;
    while (alive(helper) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(alive(helper), false, "the helper exited once its stdin closed");
  },
});

/** Whether a process runs: not gone, and not a zombie waiting for a reaper. */
function alive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}
