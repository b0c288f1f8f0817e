/**
 * Importing the module costs no work: no library is opened and no permission
 * queried until a call needs it. And a user's own test whose first call
 * binds libc passes Deno's sanitizers: no library handle stays open.
 */

import assert from "node:assert/strict";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

/** Runs `deno <args>` on a file made of `source`; its exit code and output. */
async function runFile(
  name: string,
  source: string,
  args: string[],
): Promise<{ code: number; out: string }> {
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-import-" });
  try {
    const file = `${dir}/${name}`;
    Deno.writeTextFileSync(file, source);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [...args, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return { code, out: decoder.decode(stdout) + decoder.decode(stderr) };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("importing mod.ts opens no library and queries no permission", async () => {
  const { code, out } = await runFile(
    "probe.ts",
    `const counts = { dlopen: 0, query: 0 };
const dlopen = Deno.dlopen;
Deno.dlopen = ((...args) => (counts.dlopen++, dlopen(...args))) as typeof Deno.dlopen;
const querySync = Deno.permissions.querySync.bind(Deno.permissions);
Deno.permissions.querySync = (d) => (counts.query++, querySync(d));
await import(${JSON.stringify(MOD)});
console.log(JSON.stringify(counts));
`,
    ["run", "--allow-ffi", "--allow-run=unshare", "--allow-read"],
  );
  assert.equal(code, 0, out);
  assert.deepEqual(JSON.parse(out), { dlopen: 0, query: 0 });
});

Deno.test("a user's test whose first call binds libc passes the sanitizers", async () => {
  const { code, out } = await runFile(
    "user_test.ts",
    `import assert from "node:assert/strict";
import { mountFd, MS_BIND } from ${JSON.stringify(MOD)};
Deno.test({ name: "first call", sanitizeResources: true, sanitizeOps: true }, async () => {
  (await mountFd({ source: "/", destination: "/d", flags: MS_BIND })).close();
  await assert.rejects(
    mountFd({ source: "/nonexistent", destination: "/d", flags: MS_BIND }),
    { code: "ENOENT" },
  );
});
`,
    ["test", "--no-check", "--allow-ffi", "--allow-read"],
  );
  assert.equal(code, 0, out);
  assert.match(out, /1 passed/);
});

Deno.test({
  ...skipUnless(
    "a user's test whose first get spawns a helper passes the sanitizers, and its process ends",
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    // The helper is spawned through libc, and waited for with poll on
    // another thread: a nonblocking call, whose library is open only while a
    // wait is on. A pool's idle helpers keep nothing pending.
    const { code, out } = await runFile(
      "user_get_test.ts",
      `import assert from "node:assert/strict";
import { Handles } from ${JSON.stringify(MOD)};
const range = [{ containerID: 0, hostID: 10000, size: 10 }];
Deno.test({ name: "first get", sanitizeResources: true, sanitizeOps: true }, async () => {
  using handles = new Handles();
  const fd = await handles.get({ uidMappings: range, gidMappings: range });
  assert.ok(fd.fd > 2 && !fd.closed);
  fd.close();
});
Deno.test({ name: "an idle pool", sanitizeResources: true, sanitizeOps: true }, async () => {
  await using handles = new Handles({ prespawn: 2 });
  await handles.ready();
});
`,
      ["test", "--no-check", "--allow-ffi", "--allow-read", "--allow-run=unshare"],
    );
    assert.equal(code, 0, out);
    assert.match(out, /2 passed/);
  },
});
