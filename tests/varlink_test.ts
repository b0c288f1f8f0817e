/**
 * The Varlink service and client (lib/varlink/), in this process: errors by
 * name, GetInfo, fds both ways and closed by the service after a reply, the
 * bound on connections, and stopping.
 *
 * @module
 */

import assert from "node:assert/strict";
import { O_RDONLY } from "../ffi/constants.ts";
import { open } from "../ffi/syscalls.ts";
import {
  MountError,
  OwnedFd,
  UnixConnection,
  UnixListener,
  VarlinkClient,
  VarlinkError,
} from "../mod.ts";
import { VarlinkService } from "../broker.ts";
import "./_broker.ts"; // binds the socket calls at load
import { leavesNothing, openFds } from "./_leaks.ts";

/** A service with test methods on a socket in a temporary directory, served until disposed. */
async function withService(
  options: ConstructorParameters<typeof VarlinkService>[0],
  body: (path: string, service: VarlinkService, log: string[]) => Promise<void>,
): Promise<void> {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/varlink.sock`;
  const log: string[] = [];
  const service = new VarlinkService({ ...options, log: (line) => log.push(line) });
  service.addInterface("org.example.test", "interface org.example.test\n");
  service.addMethod("org.example.test.Echo", (parameters, call) =>
    Promise.resolve({
      parameters: { ...parameters, uid: call.peer.uid, fds: call.fds.length },
      fds: call.fds.map((fd) => fd.dup()),
    }));
  service.addMethod("org.example.test.Fail", (parameters) => {
    if (parameters.errno === true) throw new MountError("open", { errno: 13 });
    throw new VarlinkError("org.example.test.Refused", { why: "because" }, "a reason for the log");
  });
  const listener = UnixListener.listen(path);
  const serving = service.serve(listener);
  try {
    await body(path, service, log);
  } finally {
    service.stop();
    await serving;
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test(
  "calls are answered by name: GetInfo, errors, fds both ways",
  leavesNothing(() =>
    withService({ product: "test" }, async (path, _service, log) => {
      using client = await VarlinkClient.connect(path);
      const info = await client.call("org.varlink.service.GetInfo");
      assert.equal(info.parameters.product, "test");
      assert.deepEqual(info.parameters.interfaces, ["org.varlink.service", "org.example.test"]);
      const idl = await client.call("org.varlink.service.GetInterfaceDescription", {
        interface: "org.example.test",
      });
      assert.equal(idl.parameters.description, "interface org.example.test\n");

      using file = new OwnedFd(open("/etc/hostname", O_RDONLY));
      const echo = await client.call("org.example.test.Echo", { a: 1 }, { fds: [file, file] });
      assert.deepEqual(echo.parameters, { a: 1, uid: Deno.uid(), fds: 2 });
      assert.equal(echo.fds.length, 2);
      assert.equal(
        Deno.statSync(`/proc/self/fd/${echo.fds[1].fd}`).ino,
        Deno.statSync(`/proc/self/fd/${file.fd}`).ino,
      );
      echo.fds.forEach((fd) => fd.close());

      await assert.rejects(client.call("org.example.test.Nope"), {
        error: "org.varlink.service.MethodNotFound",
        parameters: { method: "org.example.test.Nope" },
      });
      await assert.rejects(client.call("org.example.test.Fail"), {
        error: "org.example.test.Refused",
        parameters: { why: "because" },
      });
      await assert.rejects(client.call("org.example.test.Fail", { errno: true }), {
        error: "io.systemd.System",
        parameters: { errno: 13, errnoName: "EACCES" },
      });
      await assert.rejects(client.call("org.varlink.service.GetInterfaceDescription", {}), {
        error: "org.varlink.service.InvalidParameter",
        parameters: { parameter: "interface" },
      });
      assert.ok(
        log.some((line) => line.endsWith("org.example.test.Refused: a reason for the log")),
      );
      assert.ok(log.some((line) => line.includes(`peer uid=${Deno.uid()} pid=${Deno.pid}`)));
    })
  ),
);

Deno.test(
  "the service closes what it received and what it replied with",
  leavesNothing(() =>
    withService({}, async (path) => {
      const before = openFds().size;
      using file = new OwnedFd(open("/etc/hostname", O_RDONLY));
      for (let i = 0; i < 20; i++) {
        using client = await VarlinkClient.connect(path);
        const echo = await client.call("org.example.test.Echo", {}, { fds: [file] });
        echo.fds.forEach((fd) => fd.close());
      }
      // This process is the service too: its fds are counted here.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(openFds().size, before + 1);
    })
  ),
);

Deno.test(
  "connections beyond the bound are closed at accept; the others are served",
  leavesNothing(() =>
    withService({ maxConnections: 2 }, async (path, service, log) => {
      using first = await VarlinkClient.connect(path);
      using second = await VarlinkClient.connect(path);
      await first.call("org.varlink.service.GetInfo");
      await second.call("org.varlink.service.GetInfo");
      assert.equal(service.connections, 2);
      using third = await UnixConnection.connect(path);
      const { data } = await third.receive({ deadline: performance.now() + 5000 });
      assert.equal(data.length, 0, "the third connection is closed");
      assert.ok(log.some((line) => line.includes("refused a connection: 2 open already")));
      await first.call("org.varlink.service.GetInfo");
    })
  ),
);
