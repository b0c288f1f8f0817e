/**
 * Deno permissions: without a flag the module needs, the error names the
 * function, the flag and the reason, not a raw NotCapable stack; with the
 * documented set, it works.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { CANNOT_MOUNT, NO_ID_RANGE, skipUnless } from "./_env.ts";

const PROBE = fileURLToPath(new URL("./_permission_probe.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

async function probe(flags: string[], ...args: string[]): Promise<Record<string, unknown>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, PROBE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return JSON.parse(new TextDecoder().decode(stdout));
}

Deno.test("importing the module needs no permission", async () => {
  assert.deepEqual(await probe([], "import"), { ok: true });
});

Deno.test("without --allow-ffi: the function, the flag and the call are named", async () => {
  assert.deepEqual(await probe([], "plain", "/tmp"), {
    name: "NotCapable",
    message: "mountFd needs --allow-ffi to call open",
    notCapable: true,
  });
  assert.deepEqual(await probe(["--allow-run=unshare"], "idmapped", "/tmp"), {
    name: "NotCapable",
    message: "mountFd needs --allow-ffi to call open_tree",
    notCapable: true,
  });
});

Deno.test("mountInto and openMountNamespace name themselves and the flag", async () => {
  assert.deepEqual(await probe([], "into", "/tmp"), {
    name: "NotCapable",
    message: "mountInto needs --allow-ffi to call open",
    notCapable: true,
  });
  assert.deepEqual(await probe([], "namespace"), {
    name: "NotCapable",
    message: "openMountNamespace needs --allow-ffi to call open",
    notCapable: true,
  });
  // Its Worker loads this module's files under the Worker's own permissions.
  assert.deepEqual(await probe(["--allow-ffi"], "namespace"), {
    name: "NotCapable",
    message: `openMountNamespace needs --allow-read=${ROOT} to load the modules of its Worker`,
    notCapable: true,
  });
  assert.deepEqual(await probe(["--allow-ffi", `--allow-read=${ROOT}`], "namespace"), {
    ok: true,
  });
});

Deno.test({
  ...skipUnless(
    "without --allow-run: the function, the flag and the helper are named",
    CANNOT_MOUNT,
  ),
  async fn(): Promise<void> {
    const helper = "needs --allow-run=unshare to spawn unshare, " +
      "which makes user namespaces for id mappings";
    assert.deepEqual(await probe(["--allow-ffi"], "idmapped", "/tmp"), {
      name: "NotCapable",
      message: `mountFd ${helper}`,
      notCapable: true,
    });
    // Said first, before any syscall: not hidden behind the source's ENOENT.
    assert.deepEqual(await probe(["--allow-ffi"], "idmapped", "/nonexistent/source"), {
      name: "NotCapable",
      message: `mountFd ${helper}`,
      notCapable: true,
    });
    assert.deepEqual(await probe(["--allow-ffi"], "get"), {
      name: "NotCapable",
      message: `Handles.get ${helper}`,
      notCapable: true,
    });
    assert.deepEqual(await probe(["--allow-ffi"], "mappings", "/nonexistent/userns"), {
      name: "NotCapable",
      message: "getUserNamespaceMappings needs --allow-run=nsenter to spawn nsenter, " +
        "which reads the mappings of a user namespace it joins",
      notCapable: true,
    });
  },
});

Deno.test({
  ...skipUnless(
    "the documented set, --allow-ffi --allow-run=unshare, is enough",
    CANNOT_MOUNT,
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    const flags = ["--allow-ffi", "--allow-run=unshare"];
    const dir = Deno.makeTempDirSync();
    try {
      assert.deepEqual(await probe(["--allow-ffi"], "plain", dir), { ok: true });
      assert.deepEqual(await probe(flags, "get"), { ok: true });
      // Rootless, only a filesystem this user namespace owns can be id-mapped:
      // the test's /tmp is not one, so this stops at the kernel, past Deno.
      const result = await probe(flags, "idmapped", dir);
      if (!result.ok) {
        assert.match(String(result.message), /^mount_setattr\(MOUNT_ATTR_IDMAP\) .*EPERM/);
      }
    } finally {
      Deno.removeSync(dir);
    }
  },
});
