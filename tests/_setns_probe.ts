/**
 * Tries to open a mount namespace, and prints how that went as JSON: run by
 * the tests in a user namespace with no privilege over the namespace.
 *
 *     deno run --allow-ffi tests/_setns_probe.ts NSPATH
 *
 * @module
 */

import { openMountNamespace } from "../mod.ts";

try {
  const ns = await openMountNamespace(Deno.args[0]);
  await ns.close();
  console.log(JSON.stringify({ ok: true }));
} catch (error) {
  const { name, message, op, code } = error as Error & { op?: string; code?: string };
  console.log(JSON.stringify({ ok: false, name, op, code, message }));
}
