/**
 * Run by userns_test.ts in a process of its own (other permissions, another
 * PATH, hidden system directories, a user namespace limit, an inherited fd):
 * makes one user namespace and prints what came of it as JSON, with the
 * programs it spawned.
 *
 * - `get`: a get on a Handles without a pool.
 * - `helper`: a pooled helper, idle: its fds and command line.
 */

import { Handles } from "../mod.ts";
import { childCount, processFds, withSpawnHooks } from "./_process.ts";

const mapping = {
  uidMappings: [{ containerID: 0, hostID: 0, size: 1 }],
  gidMappings: [{ containerID: 0, hostID: 0, size: 1 }],
};
const spawned: string[] = [];
const hooks = { before: (command: string) => void spawned.push(command) };

try {
  const result = await withSpawnHooks(hooks, async () => {
    if (Deno.args[0] === "helper") {
      await using handles = new Handles({ prespawn: 1 });
      await handles.ready();
      const [pid] = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/children`)
        .trim().split(" ").map(Number);
      return {
        children: childCount(),
        fds: processFds(pid),
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
