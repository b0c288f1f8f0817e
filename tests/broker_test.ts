/**
 * The mount broker (lib/broker/), as its users meet it: the service in a
 * process of its own, as root in this suite's mount namespace; its clients
 * as the unprivileged test user, in user namespaces of their own, with our
 * client (`tests/_broker_client.ts`) and with one in Python from the standard
 * library (`tests/_broker_client.py`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { MNT_DETACH } from "../ffi/constants.ts";
import { umount2 } from "../ffi/syscalls.ts";
import { mount } from "./_syscalls.ts";
import {
  asTestUser,
  BROKER_COMMAND,
  clientFiles,
  NO_BROKER_TESTS,
  NO_RANGES,
  ownedDir,
  probe,
  type ProbeRequest,
  runJson,
  scratch,
  startBroker,
  USER,
} from "./_broker.ts";
import { openMountNamespace, requestDirectoryMount, VarlinkClient } from "../mod.ts";
import { CANNOT_MOUNT, MODE, skipUnless } from "./_env.ts";
import { leavesNothing } from "./_leaks.ts";

const FOREIGN = 0x7FFE0000;
const DENIED = "org.varlink.service.PermissionDenied";

/** A tree of directories for the cases, and a user namespace of another user. */
async function scenery(): Promise<AsyncDisposable & { base: string }> {
  const { uid, gid } = USER!;
  const place = scratch();
  const base = place.dir;
  ownedDir(join(base, "own"), uid, gid);
  ownedDir(join(base, "locked"), uid, gid, 0o000);
  ownedDir(join(base, "other"), 4242, 4242);
  if (NO_RANGES === undefined) {
    ownedDir(join(base, "rootparent/foreign"), FOREIGN, FOREIGN);
    ownedDir(join(base, "ownparent"), uid, gid);
    ownedDir(join(base, "ownparent/foreign"), FOREIGN, FOREIGN);
    Deno.chownSync(join(base, "ownparent/foreign/file"), FOREIGN + 5, FOREIGN + 5);
  }
  Deno.mkdirSync(join(base, "mnt"));
  ownedDir(join(base, "own\npeer uid=0 forged"), uid, gid);
  Deno.writeTextFileSync(join(base, "otherns"), "");
  // A user namespace of another user (4242), bind-mounted where the client can open it.
  const other = new Deno.Command("setpriv", {
    args: ["--reuid=4242", "--regid=4242", "--clear-groups", "unshare", "--user", "sleep", "60"],
    stdin: "null",
  }).spawn();
  const own = Deno.readLinkSync("/proc/self/ns/user");
  while (Deno.readLinkSync(`/proc/${other.pid}/ns/user`) === own) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  mount(`/proc/${other.pid}/ns/user`, join(base, "otherns"), "", 0x1000, "");
  return {
    base,
    async [Symbol.asyncDispose](): Promise<void> {
      umount2(join(base, "otherns"), MNT_DETACH);
      other.kill("SIGKILL");
      await other.status;
      Deno.chmodSync(join(base, "locked"), 0o755);
      place.close();
    },
  };
}

Deno.test(
  skipUnless(
    "the broker gives the test user its own directories, id-mapped, and no more",
    NO_BROKER_TESTS,
  ),
  async (t) =>
    await leavesNothing(async () => {
      await using place = await scenery();
      const base = place.base;
      await using broker = await startBroker(base);
      const { uid } = USER!;
      const socket = broker.socket;
      const ask = (request: Omit<ProbeRequest, "socket">): ProbeRequest => ({ socket, ...request });
      const mnt = join(base, "mnt");

      await t.step(
        `its directory shows as 0:0 inside unshare --user${
          MODE === "root" ? " --map-auto" : ""
        } --map-root-user`,
        async () => {
          const got = await probe("map-auto", ask({ dir: join(base, "own"), attach: mnt }));
          assert.deepEqual(got.files, { ".": "0:0", file: "0:0" }, JSON.stringify(got));
          assert.match(got.options!, /(^|,)nosuid(,|$)/);
          assert.match(got.options!, /(^|,)nodev(,|$)/);
          assert.equal(got.write, "ok");
        },
      );

      await t.step(
        "as 994:994 with dev.mountfd.MountFileSystem (denied where 994 is unmapped)",
        async () => {
          const got = await probe(
            "map-auto",
            ask({ dir: join(base, "own"), attach: mnt, as: { uid: 994, gid: 994 } }),
          );
          if (MODE === "root") {
            assert.deepEqual(got.files, { ".": "994:994", file: "994:994" }, JSON.stringify(got));
          } else {
            assert.equal(got.error, DENIED, "a namespace of --map-root-user alone maps 0 alone");
          }
        },
      );

      await t.step({
        ...skipUnless(
          "as 0:0 and as 994:994 inside a namespace of 0:SUBUID:65536 alone",
          NO_RANGES,
        ),
        fn: async () => {
          const root = await probe("subordinate", ask({ dir: join(base, "own"), attach: mnt }));
          assert.deepEqual(root.files, { ".": "0:0", file: "0:0" }, JSON.stringify(root));
          const as = await probe(
            "subordinate",
            ask({ dir: join(base, "own"), attach: mnt, as: { uid: 994, gid: 994 } }),
          );
          assert.deepEqual(as.files, { ".": "994:994", file: "994:994" }, JSON.stringify(as));
        },
      });

      await t.step("read-only stays read-only", async () => {
        const got = await probe(
          "map-auto",
          ask({ dir: join(base, "own"), attach: mnt, readOnly: true }),
        );
        assert.match(got.options!, /^ro(,|$)/);
        assert.equal(got.write, "EROFS");
      });

      await t.step({
        ...skipUnless(
          "foreign-owned under its own parent: on-disk 0x7FFE0000+n shows as n",
          NO_RANGES,
        ),
        fn: async () => {
          const got = await probe(
            "map-auto",
            ask({ dir: join(base, "ownparent/foreign"), attach: mnt, mode: "foreign" }),
          );
          assert.deepEqual(got.files, { ".": "0:0", file: "5:5" }, JSON.stringify(got));
          const auto = await probe(
            "map-auto",
            ask({ dir: join(base, "ownparent/foreign"), attach: mnt }),
          );
          assert.deepEqual(auto.files, { ".": "0:0", file: "5:5" }, "auto picks foreign");
        },
      });

      await t.step("an O_PATH fd of its own directory that it can't read is accepted", async () => {
        const got = await probe("map-auto", ask({ dir: join(base, "locked"), opath: true }));
        assert.equal(got.ok, true, JSON.stringify(got));
      });

      const refusals: [string, "plain" | "map-auto", Omit<ProbeRequest, "socket">][] = [
        ["another user's directory", "map-auto", { dir: join(base, "other") }],
        ["/etc", "map-auto", { dir: "/etc" }],
        ["an O_PATH fd of another user's directory", "map-auto", {
          dir: join(base, "other"),
          opath: true,
        }],
        ...(NO_RANGES !== undefined ? [] : [[
          "a foreign-owned tree under someone else's parent",
          "map-auto",
          { dir: join(base, "rootparent/foreign"), mode: "foreign" },
        ] as [string, "map-auto", Omit<ProbeRequest, "socket">]]),
        ["the initial user namespace", "plain", { dir: join(base, "own") }],
        ["no user namespace", "plain", { dir: join(base, "own"), userns: null }],
        ["another user's namespace", "plain", {
          dir: join(base, "own"),
          userns: join(base, "otherns"),
        }],
        [
          "a mapping outside the namespace",
          "map-auto",
          { dir: join(base, "own"), as: { uid: 70000, gid: 0 } },
        ],
      ];
      for (const [what, wrapper, request] of refusals) {
        await t.step(`refused with PermissionDenied: ${what}`, async () => {
          const got = await probe(wrapper, ask(request));
          assert.equal(got.error, DENIED, JSON.stringify(got));
        });
      }

      await t.step("a directory's name can't forge a line of the log", async () => {
        const got = await probe("map-auto", ask({ dir: join(base, "own\npeer uid=0 forged") }));
        assert.equal(got.ok, true, JSON.stringify(got));
        assert.ok(!broker.log().split("\n").some((l) => l.startsWith("peer uid=0 forged")));
        assert.match(broker.log(), /own\\xapeer uid=0 forged mode=root/);
      });

      await t.step("the log has a line per request: peer, directory, mode, result", () => {
        const lines = broker.log().split("\n").filter((l) => l.includes("MountDirectory"));
        assert.ok(lines.length >= 10, broker.log());
        assert.ok(
          lines.some((l) =>
            l.includes(`peer uid=${uid} pid=`) && l.includes(`dir=${join(base, "own")}`) &&
            l.includes("mode=root") && l.endsWith(" ok")
          ),
          broker.log(),
        );
        assert.ok(
          lines.some((l) => l.includes("dir=/etc") && l.includes(`${DENIED}: the directory`)),
        );
      });

      await t.step("mount-dir, the command, asks and attaches; bad usage exits 2", async () => {
        const client = clientFiles();
        const command = [
          client.deno,
          "run",
          "--no-check",
          "--allow-ffi",
          "--allow-env",
          "--allow-read",
          join(client.root, "examples/mount_dir.ts"),
          "--socket",
          socket,
        ];
        const script = `${command.join(" ")} --ro "$1" "$2" && stat -c %u:%g "$2/file" && ` +
          `${command.join(" ")} --as 1:2:3 "$1" "$2"; echo "exit $?"`;
        const [program, ...args] = asTestUser("map-auto", [
          "sh",
          "-c",
          script,
          "sh",
          join(base, "own"),
          mnt,
        ]);
        const { stdout } = await new Deno.Command(program, {
          args,
          stdin: "null",
          stdout: "piped",
          stderr: "null",
        }).output();
        assert.deepEqual(new TextDecoder().decode(stdout).trim().split("\n"), ["0:0", "exit 2"]);
      });

      await t.step("a client in Python gets the same answers", async () => {
        const python = (wrapper: "plain" | "map-auto", request: Record<string, unknown>) =>
          runJson(asTestUser(wrapper, [
            "python3",
            join(clientFiles().root, "tests/_broker_client.py"),
            JSON.stringify({ socket, ...request }),
          ]));
        const method = "io.systemd.MountFileSystem.MountDirectory";
        const mine = await python("map-auto", {
          method,
          parameters: { directoryFileDescriptor: 0, userNamespaceFileDescriptor: 1, mode: "root" },
          fds: [join(base, "own"), "/proc/self/ns/user"],
        }) as unknown as { parameters: { mountFileDescriptor: number }; owners: string[] };
        assert.equal(mine.parameters.mountFileDescriptor, 0, JSON.stringify(mine));
        assert.deepEqual(mine.owners, ["0:0"]);
        if (MODE === "root") {
          const ours = await python("map-auto", {
            method: "dev.mountfd.MountFileSystem.MountDirectory",
            parameters: {
              directoryFileDescriptor: 0,
              userNamespaceFileDescriptor: 1,
              uid: 994,
              gid: 994,
            },
            fds: [join(base, "own"), "/proc/self/ns/user"],
          }) as unknown as { owners: string[] };
          assert.deepEqual(ours.owners, ["994:994"]);
        }
        const etc = await python("map-auto", {
          method,
          parameters: { directoryFileDescriptor: 0, userNamespaceFileDescriptor: 1 },
          fds: ["/etc", "/proc/self/ns/user"],
        });
        assert.equal(etc.error, DENIED);
        const initial = await python("plain", {
          method,
          parameters: { directoryFileDescriptor: 0, userNamespaceFileDescriptor: 1 },
          fds: [join(base, "own"), "/proc/self/ns/user"],
        });
        assert.equal(initial.error, DENIED);
        const bad = await python("plain", {
          method,
          parameters: { directoryFileDescriptor: 3 },
          fds: [join(base, "own")],
        });
        assert.equal(bad.error, "org.varlink.service.InvalidParameter");
        assert.deepEqual(bad.parameters, { parameter: "directoryFileDescriptor" });
        const unknown = await python("plain", { method: "io.systemd.MountFileSystem.Nope" });
        assert.equal(unknown.error, "org.varlink.service.MethodNotFound");
        const info = await python("plain", {
          method: "org.varlink.service.GetInfo",
        }) as unknown as {
          parameters: { interfaces: string[] };
        };
        assert.ok(info.parameters.interfaces.includes("io.systemd.MountFileSystem"));
        assert.ok(info.parameters.interfaces.includes("dev.mountfd.MountFileSystem"));
      });

      await t.step("a file, not a directory: io.systemd.System with ENOTDIR", async () => {
        const got = await runJson(asTestUser("map-auto", [
          "python3",
          join(clientFiles().root, "tests/_broker_client.py"),
          JSON.stringify({
            socket,
            method: "io.systemd.MountFileSystem.MountDirectory",
            parameters: { directoryFileDescriptor: 1, userNamespaceFileDescriptor: 0 },
            fds: ["/proc/self/ns/user", join(base, "own/file")],
          }),
        ]));
        assert.equal(got.error, "io.systemd.System");
        assert.deepEqual(got.parameters, { errno: 20, errnoName: "ENOTDIR" });
      });
    })(),
);

Deno.test(
  skipUnless(
    "socket activation: the broker serves the listening socket it inherits",
    CANNOT_MOUNT,
  ),
  leavesNothing(async () => {
    const dir = Deno.makeTempDirSync({ prefix: "mountfd-activation-" });
    const socket = join(dir, "activated.sock");
    // What systemd does: bind and listen, then exec the service with the socket
    // (as fd 3, which the README's unit moves to 9 before Deno starts).
    const activate = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(16)
os.dup2(s.fileno(), 9)  # systemd's fd 3, moved as the README says: Deno takes fd 3
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execve(sys.argv[2], sys.argv[2:], env)
`;
    const child = new Deno.Command("python3", {
      args: [
        "-c",
        activate,
        socket,
        ...BROKER_COMMAND,
        "--listen-fd",
        "9",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      let info;
      for (let i = 0; i < 300 && info === undefined; i++) {
        try {
          using client = await VarlinkClient.connect(socket);
          info = await client.call("org.varlink.service.GetInfo");
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assert.ok(
        (info?.parameters.interfaces as string[]).includes("io.systemd.MountFileSystem"),
      );
    } finally {
      child.kill("SIGTERM");
      const log = new TextDecoder().decode((await child.output()).stderr);
      assert.match(log, /listening on fd 9 \(socket activation\)/);
      Deno.removeSync(dir, { recursive: true });
    }
  }),
);

Deno.test(
  skipUnless(
    "a mount source from the broker attaches through MountNamespace.attach too",
    NO_BROKER_TESTS,
  ),
  leavesNothing(async () => {
    const place = scratch();
    const src = join(place.dir, "src");
    const dst = join(place.dir, "dst");
    ownedDir(src, 0, 0);
    Deno.mkdirSync(dst);
    // Another mount namespace, such as a container's.
    const other = new Deno.Command("unshare", {
      args: ["--mount", "--propagation", "private", "sleep", "60"],
      stdin: "null",
    }).spawn();
    try {
      const own = Deno.readLinkSync("/proc/self/ns/mnt");
      while (Deno.readLinkSync(`/proc/${other.pid}/ns/mnt`) === own) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await using broker = await startBroker(place.dir);
      // Root asks with no user namespace: its files show as 4242 through the mount.
      using source = await requestDirectoryMount(src, {
        socket: broker.socket,
        userns: null,
        as: { uid: 4242, gid: 4242 },
      });
      await using ns = await openMountNamespace(`/proc/${other.pid}/ns/mnt`);
      await ns.attach(source, { root: "/", path: dst });
      const { uid, gid } = Deno.statSync(`/proc/${other.pid}/root${dst}/file`);
      assert.deepEqual([uid, gid], [4242, 4242]);
      assert.throws(() => Deno.statSync(`${dst}/file`), Deno.errors.NotFound, "not in ours");
    } finally {
      other.kill("SIGKILL");
      await other.status;
      place.close();
    }
  }),
);
