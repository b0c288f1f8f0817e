import assert from "node:assert/strict";
import { setFaultHook } from "./_faults.ts";
import { getUserNamespaceMappings, Handles, type Mount, mountFd, MS_BIND } from "../mod.ts";
import { mountTest } from "./_mounts.ts";
import { childFds, childPids, fdFlags, openFds } from "./_leaks.ts";
import { simpleMapping } from "./_mappings.ts";
import { O_CLOEXEC } from "../ffi/constants.ts";

/**
 * Fds this process inherited without close-on-exec (beyond stdio), which
 * every child inherits in turn: they are not this module's.
 */
function inheritable(): string[] {
  return [...openFds()].filter((fd) => fd > 2 && !(fdFlags(fd) & O_CLOEXEC)).map(String);
}

mountTest("no fd leaks over hundreds of mounts and failures", async (fx) => {
  const src = fx.mkdir("src");
  using handles = new Handles();
  const plain: Mount = { source: src, destination: "/d", flags: MS_BIND };
  const idmapped: Mount = { ...plain, idMapping: simpleMapping() };
  const failing: [Mount, string][] = [
    [{ ...plain, source: `${src}/missing` }, "ENOENT"],
    [{ ...idmapped, source: `${src}/missing` }, "ENOENT"],
    [{ ...idmapped, source: "/proc/self" }, "EINVAL"],
    [{ ...idmapped, idMapping: { usernsPath: "/proc/self/ns/mnt" } }, "open userns"],
    [{ ...plain, flags: 0 }, "only bind-mounts"],
  ];
  // Warm up: the cached namespace and Deno's own lazily opened fds.
  (await mountFd(idmapped, { handles })).close();
  const before = openFds().size;
  for (let i = 0; i < 300; i++) {
    (await mountFd(plain)).close();
    (await mountFd(idmapped, { handles })).close();
    const [mount, expected] = failing[i % failing.length];
    await assert.rejects(mountFd(mount, { handles }), (e: Error) => {
      assert.ok(`${(e as { code?: string }).code} ${e.message}`.includes(expected), e.message);
      return true;
    });
  }
  assert.equal(openFds().size, before);
  assert.deepEqual(childPids(), []);
});

mountTest("fds are not inherited by spawned children", async (fx) => {
  const src = fx.mkdir("src");
  using handles = new Handles();
  using plain = await mountFd({ source: src, destination: "/d", flags: MS_BIND });
  using tree = await mountFd({
    source: src,
    destination: "/d",
    flags: MS_BIND,
    idMapping: simpleMapping(),
  }, {
    handles,
  });
  using userns = await handles.get(simpleMapping());
  assert.ok(plain.fd > 2 && tree.fd > 2 && userns.fd > 2);
  const theirs = await childFds();
  assert.deepEqual(theirs, [0, 1, 2, ...inheritable().map(Number)].sort((a, b) => a - b));
  for (const fd of [plain.fd, tree.fd, userns.fd]) {
    assert.ok(!theirs.includes(fd), `fd ${fd} was inherited`);
  }
});

mountTest("every fd the module holds is close-on-exec, after each kind of call", async (fx) => {
  const src = fx.mkdir("src");
  using handles = new Handles();
  const held: { close(): void }[] = [];
  const kinds: [string, () => Promise<void>][] = [
    ["plain mountFd", async () => {
      held.push(await mountFd({ source: src, destination: "/d", flags: MS_BIND }));
    }],
    ["id-mapped mountFd", async () => {
      held.push(
        await mountFd({
          source: src,
          destination: "/d",
          flags: MS_BIND,
          idMapping: simpleMapping(),
        }, {
          handles,
        }),
      );
    }],
    ["Handles.get", async () => {
      held.push(await handles.get(simpleMapping(0, 20000, 10)));
    }],
    ["mountFd with usernsPath", async () => {
      const userns = await handles.get(simpleMapping());
      held.push(userns);
      held.push(
        await mountFd({
          source: src,
          destination: "/d",
          flags: MS_BIND,
          idMapping: { usernsPath: `/proc/self/fd/${userns.fd}` },
        }),
      );
    }],
    ["getUserNamespaceMappings", async () => {
      const userns = await handles.get(simpleMapping());
      held.push(userns);
      await getUserNamespaceMappings(`/proc/${Deno.pid}/fd/${userns.fd}`);
    }],
    ["failed calls", async () => {
      await assert.rejects(
        mountFd({
          source: "/proc/self",
          destination: "/d",
          flags: MS_BIND,
          idMapping: simpleMapping(),
        }, { handles }),
      );
    }],
  ];
  const start = openFds();
  for (const [kind, call] of kinds) {
    await call();
    for (const fd of openFds()) {
      if (start.has(fd)) continue;
      assert.ok(fdFlags(fd) & O_CLOEXEC, `${kind}: fd ${fd} is close-on-exec`);
    }
    const { stdout } = await new Deno.Command("ls", { args: ["/proc/self/fd"], stdout: "piped" })
      .output();
    const theirs = new TextDecoder().decode(stdout).trim().split(/\s+/).map(Number);
    const ours = [...openFds()].filter((fd) => !start.has(fd));
    assert.deepEqual(
      ours.filter((fd) => theirs.includes(fd) && fd !== Math.max(...theirs)),
      [],
      kind,
    );
  }
  for (const fd of held) fd.close();
});

mountTest("the userns helper inherits only its stdio", async () => {
  const helperFds: string[][] = [];
  let opens = 0;
  setFaultHook((op) => {
    // The maps are written while the helper waits in its namespace: the
    // second open (setgroups), after the helper's /proc/PID was pinned right
    // after the spawn, maybe before it ran its program.
    if (op === "open" && ++opens === 2) {
      for (const pid of childPids()) {
        helperFds.push([...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) => e.name).sort());
      }
    }
    return undefined;
  });
  try {
    using handles = new Handles();
    using _ = await handles.get(simpleMapping());
  } finally {
    setFaultHook(undefined);
  }
  assert.deepEqual(helperFds, [["0", "1", "2", ...inheritable()].sort()]);
});
