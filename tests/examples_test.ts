import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { NO_ID_RANGE, skipUnless } from "./_env.ts";
import { childPids } from "./_leaks.ts";

const DEMO = fileURLToPath(new URL("../examples/idmapped_bind.ts", import.meta.url));

Deno.test({
  // The demo makes its own private mount namespace when run as root.
  ...skipUnless(
    "the demo prints the ownership table, with only the permissions it documents",
    NO_ID_RANGE,
  ),
  async fn(): Promise<void> {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "--allow-run", "--allow-read", "--allow-write", DEMO],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const rows = out.split("\n").filter((line) => /^\S+\.txt\s+\d+:\d+\s+\d+:\d+$/.test(line))
      .map((line) => line.trim().split(/\s+/));
    assert.deepEqual(rows, [
      ["root.txt", "0:0", "10000:10000"],
      ["daemon.txt", "1:1", "10001:10001"],
      ["alice.txt", "1000:1000", "11000:11000"],
      ["bob.txt", "1001:1001", "11001:11001"],
      ["outside.txt", "3000:3000", "65534:65534"],
    ]);
    assert.match(out, /open_tree source/);
    assert.match(out, /read-only id-mapped mount \(mountInto with MS_RDONLY\)/);
    assert.match(out, /mount options: +ro,relatime,idmapped\n/);
    assert.match(out, /owner of root\.txt: +10000:10000\n/);
    assert.match(out, /write to root\.txt: +refused: EROFS\n/);
    assert.deepEqual(childPids(), []);
  },
});
