/**
 * Run by userns_test.ts in a process of its own (other permissions, another
 * PATH, hidden system directories, a user namespace limit, an inherited fd):
 * makes one user namespace and prints what came of it as JSON, with the
 * programs it spawned.
 *
 * - `get`: a get on a Handles without a pool.
 * - `helper`: a pooled helper, idle: its fds and command line, and the fds
 *   of this process that are not close-on-exec.
 */

import { O_CLOEXEC } from "../ffi/constants.ts";
import { Handles } from "../mod.ts";
import { processFds, withSpawnHooks } from "./_process.ts";

const mapping = {
  uidMappings: [{ containerID: 0, hostID: 0, size: 1 }],
  gidMappings: [{ containerID: 0, hostID: 0, size: 1 }],
};
const spawned: string[] = [];

/** The open flags of an fd of this process (tests/_leaks.ts needs --allow-read). */
function openFlags(fd: number): number {
  const info = Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`);
  return parseInt(/^flags:\s+([0-7]+)$/m.exec(info)![1], 8);
}

const hooks = { before: (command: string) => void spawned.push(command) };

try {
  // Without --allow-ffi nothing can be spawned (the library spawns through
  // libc), and no hook can be set.
  const ffi = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  const watch = <T>(fn: () => Promise<T>): Promise<T> => ffi ? withSpawnHooks(hooks, fn) : fn();
  const result = await watch(async () => {
    if (Deno.args[0] === "helper") {
      await using handles = new Handles({ prespawn: 1 });
      await handles.ready();
      const [pid] = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/children`)
        .trim().split(" ").map(Number);
      // This process's fds that are not close-on-exec, beyond stdio.
      const inherited = Object.keys(processFds(Deno.pid)).map(Number)
        .filter((fd) => fd > 2 && !(openFlags(fd) & O_CLOEXEC));
      return {
        fds: processFds(pid),
        inherited,
        cmdline: Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean),
      };
    }
    using handles = new Handles();
    (await handles.get(mapping)).close();
    return {};
  });
  console.log(JSON.stringify({ ok: true, ...result, spawned }));
} catch (error) {
  const { name, message, op, code } = error as Error & { op?: string; code?: string };
  console.log(JSON.stringify({ name, message, op, code, spawned }));
}
