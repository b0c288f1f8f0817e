/**
 * The userns helper failing at each stage: each gives a clear error and
 * leaves no fd and no process behind. (A missing unshare, a helper that
 * fails before it is ready, and a stopped one are in userns_test.ts and
 * pool_test.ts.) The helper fails for real: it is killed, stopped,
 * or its unshare fails; only the kernel's refusal of a map is injected.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { errnoValue } from "../ffi/errno.ts";
import { setFaultHook } from "./_faults.ts";
import { Handles, MountError } from "../mod.ts";
import { namespaceMaps, whenHelperReady, zombie } from "./_process.ts";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";
import { leavesNothing } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";

Deno.test({
  ...skipUnless("a helper that dies after it is ready, before its maps are written", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    let killed = 0;
    // Once it has echoed from its new namespace, kill it, and wait until it
    // is a zombie (not yet reaped) before the parent writes its maps.
    const kill = (pid: number): void => {
      killed = pid;
      Deno.kill(pid, "SIGKILL");
      while (!zombie(pid));
    };
    using handles = new Handles();
    // Until it is reaped, a dead helper's credentials still hold its user
    // namespace. As root, the maps and the open go through: a whole
    // namespace. Rootless, the kernel hides a zombie's /proc files
    // (EACCES): a clear error naming the file.
    let fd;
    try {
      fd = await whenHelperReady(kill, () => handles.get(simpleMapping()));
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
    assert.ok(killed > 0);
  }),
});

Deno.test({
  ...skipUnless("a map write the kernel refuses", NO_ID_RANGE),
  fn: leavesNothing(async () => {
    // As root every host id is mappable, so the refusal is injected here;
    // the rootless suite also meets a real one (userns_test.ts).
    // The uid_map's write: the first of a map's text.
    let refused = false;
    const decoder = new TextDecoder();
    setFaultHook((op, { args }) => {
      if (refused || op !== "write" || !decoder.decode(args[1] as Uint8Array).startsWith("0 ")) {
        return undefined;
      }
      refused = true;
      return errnoValue("EPERM");
    });
    try {
      using handles = new Handles();
      await assert.rejects(handles.get(simpleMapping()), {
        name: "MountError",
        op: "write",
        code: "EPERM",
        // Rootless, the hint also names the ranges this process maps.
        message:
          /^write dst=\/proc\/\d+\/uid_map: EPERM: .* \(writing "0 10000 2000"\)( \(this process maps only the uids [^)]+\))?$/,
      });
    } finally {
      setFaultHook(undefined);
    }
  }),
});

const WAITER = fileURLToPath(new URL("./_helper_waiter.ts", import.meta.url));

Deno.test({
  ...skipUnless(
    "a helper outlives no Deno process: killed with SIGKILL, its helper exits by itself",
    NO_ID_RANGE,
  ),
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
