import assert from "node:assert/strict";
import { errnoValue } from "../ffi/errno.ts";
import { openNamespaceFile } from "../lib/namespace_file.ts";
import { MountError } from "../mod.ts";
import { setFaultHook } from "./_faults.ts";
import { MODE } from "./_env.ts";
import { newFds, openFds } from "./_leaks.ts";

/**
 * A Worker that, `ms` after it is told a FIFO's path, opens it for writing
 * without blocking: it releases a reader blocked in open(2) on it, so that a
 * test of a blocking open fails instead of hanging.
 */
async function fifoReleaser(path: string, ms: number): Promise<Worker> {
  const syscalls = new URL("../ffi/syscalls.ts", import.meta.url).href;
  const constants = new URL("../ffi/constants.ts", import.meta.url).href;
  const code = `
    import { close, open } from ${JSON.stringify(syscalls)};
    import { O_NONBLOCK, O_WRONLY } from ${JSON.stringify(constants)};
    self.onmessage = ({ data }) => {
      setTimeout(() => {
        try {
          close(open(data, O_WRONLY | O_NONBLOCK));
        } catch {
          // ENXIO: no reader, nothing to release.
        }
      }, ${ms});
    };
    self.postMessage("ready");
  `;
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  URL.revokeObjectURL(url);
  await new Promise((resolve) => worker.onmessage = resolve);
  worker.postMessage(path);
  return worker;
}

for (const kind of ["user", "mnt"] as const) {
  Deno.test(`a FIFO is refused at once as no namespace file (${kind})`, async () => {
    const dir = Deno.makeTempDirSync({ prefix: "mountfd-nsfile-" });
    const fifo = `${dir}/fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    // Without O_NONBLOCK, open(2) waits for a writer, with the event loop
    // stopped: the releaser ends the wait after 2 s, and the test fails.
    const worker = await fifoReleaser(fifo, 2000);
    try {
      // Counted around the call only: the Worker has fds of its own.
      const before = openFds();
      const start = performance.now();
      assert.throws(() => openNamespaceFile(fifo, kind), (e: unknown) => {
        assert.ok(e instanceof MountError, String(e));
        assert.equal(e.op, kind === "user" ? "open userns" : "open mntns");
        assert.equal(
          e.message,
          `${e.op} ${kind === "user" ? "userns" : "src"}=${fifo}: not a namespace file ` +
            `(expected /proc/PID/ns/${kind} or a bind mount of one)`,
        );
        return true;
      });
      const elapsed = performance.now() - start;
      assert.deepEqual(newFds(before), []);
      assert.ok(elapsed < 1000, `the open blocked for ${Math.round(elapsed)} ms`);
    } finally {
      worker.terminate();
      Deno.removeSync(dir, { recursive: true });
    }
  });
}

Deno.test("a namespace of another type is named by its type", () => {
  const before = openFds();
  assert.throws(() => openNamespaceFile("/proc/self/ns/mnt", "user"), {
    name: "MountError",
    op: "open userns",
    message: "open userns userns=/proc/self/ns/mnt: not a user namespace (namespace type: mount)",
  });
  for (const [file, type] of [["user", "user"], ["net", "network"], ["pid", "pid"]]) {
    assert.throws(() => openNamespaceFile(`/proc/self/ns/${file}`, "mnt"), {
      message: `open mntns src=/proc/self/ns/${file}: not a mount namespace ` +
        `(namespace type: ${type})`,
    });
  }
  {
    using userns = openNamespaceFile("/proc/self/ns/user", "user");
    using mntns = openNamespaceFile("/proc/self/ns/mnt", "mnt");
    assert.match(Deno.readLinkSync(`/proc/self/fd/${userns.fd}`), /^user:\[\d+\]$/);
    assert.match(Deno.readLinkSync(`/proc/self/fd/${mntns.fd}`), /^mnt:\[\d+\]$/);
  }
  assert.deepEqual(newFds(before), []);
});

Deno.test("a namespace file that can't be opened for want of ptrace access says so", () => {
  const hint = "(a namespace of another process needs ptrace access to it)";
  const before = openFds();
  setFaultHook((op) => op === "open" ? errnoValue("EACCES") : undefined);
  try {
    assert.throws(() => openNamespaceFile("/proc/self/ns/user", "user"), (e: unknown) => {
      assert.ok(e instanceof MountError);
      assert.equal(e.op, "open");
      assert.equal(e.code, "EACCES");
      // A user namespace file is named as such, not as a mount source.
      assert.equal(e.userns, "/proc/self/ns/user");
      assert.equal(e.source, undefined);
      assert.equal(
        e.message,
        `open userns=/proc/self/ns/user: EACCES: Permission denied ${hint}`,
      );
      assert.ok(e.cause instanceof MountError);
      return true;
    });
  } finally {
    setFaultHook(undefined);
  }
  if (MODE === "rootless") {
    // The real refusal: init's namespaces, from a user namespace of our own.
    assert.throws(() => openNamespaceFile("/proc/1/ns/user", "user"), {
      code: "EACCES",
      message: new RegExp(`${hint.replace(/[()]/g, "\\$&")}$`),
    });
  } else {
    console.log("as root, init's namespaces can be opened: only the injected EACCES is checked");
  }
  assert.deepEqual(newFds(before), []);
});
