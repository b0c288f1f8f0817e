import assert from "node:assert/strict";
import { O_CLOEXEC, O_PATH } from "../ffi/constants.ts";
import { open } from "../ffi/syscalls.ts";
import { OwnedFd } from "../mod.ts";
import { fdFlags, newFds, openFds } from "./_leaks.ts";

Deno.test("OwnedFd closes once, and says so", () => {
  const before = openFds();
  const owned = new OwnedFd(open("/", O_PATH));
  const fd = owned.fd;
  assert.ok(fd >= 0);
  assert.equal(owned.closed, false);
  assert.deepEqual(newFds(before), [`${fd} -> /`]);
  owned.close();
  assert.equal(owned.closed, true);
  assert.equal(owned.fd, -1);
  owned.close(); // idempotent
  assert.deepEqual(newFds(before), []);
});

Deno.test("OwnedFd is disposable", () => {
  const before = openFds();
  {
    using owned = new OwnedFd(open("/", O_PATH));
    assert.ok(owned.fd >= 0);
  }
  assert.deepEqual(newFds(before), []);
});

Deno.test("OwnedFd.dup() gives an independent close-on-exec fd", () => {
  const before = openFds();
  using owned = new OwnedFd(open("/", O_PATH));
  const copy = owned.dup();
  assert.notEqual(copy.fd, owned.fd);
  assert.ok(fdFlags(copy.fd) & O_CLOEXEC);
  owned.close();
  assert.equal(Deno.readLinkSync(`/proc/self/fd/${copy.fd}`), "/");
  copy.close();
  assert.deepEqual(newFds(before), []);
  assert.throws(() => owned.dup(), { name: "TypeError", message: "Cannot dup a closed fd" });
});

Deno.test("OwnedFd rejects a bad fd number", () => {
  for (const bad of [-1, 1.5, NaN]) {
    assert.throws(() => new OwnedFd(bad), { name: "TypeError" });
  }
});
