/**
 * The mount broker under hostile clients: silence, half messages, 200 fds,
 * 10 MB of JSON, wrong types, unknown methods, garbage, 100 at once, and a
 * directory on a FUSE server that never answers. The good client beside them
 * is answered within a second, and the service's fds return to where they
 * were.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  encodeMessage,
  OwnedFd,
  requestDirectoryMount,
  UnixConnection,
  VarlinkClient,
  type VarlinkError,
} from "../mod.ts";
import { MNT_DETACH, O_DIRECTORY, O_PATH, O_RDONLY, O_RDWR } from "../ffi/constants.ts";
import { open, umount2 } from "../ffi/syscalls.ts";
import { mount } from "./_syscalls.ts";
import { type Broker, NO_BROKER_TESTS, scratch, startBroker } from "./_broker.ts";
import { MODE, skipUnless } from "./_env.ts";
import { leavesNothing } from "./_leaks.ts";

const encoder = new TextEncoder();

/** The good client: a GetInfo and a MountDirectory, each timed. */
async function goodClient(broker: Broker, dir: string): Promise<number[]> {
  const times: number[] = [];
  let start = performance.now();
  {
    using client = await VarlinkClient.connect(broker.socket);
    const info = await client.call("org.varlink.service.GetInfo", {}, { timeout: 5000 });
    assert.ok((info.parameters.interfaces as string[]).includes("io.systemd.MountFileSystem"));
  }
  times.push(performance.now() - start);
  start = performance.now();
  using source = await requestDirectoryMount(dir, {
    socket: broker.socket,
    userns: null,
    mode: "identity",
    timeout: 5000,
  });
  times.push(performance.now() - start);
  assert.equal(source.type, "open_tree");
  return times;
}

/** Waits until `check` holds, or fails after `ms`. */
async function eventually(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(what());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Sends until the broker drops the connection. */
async function flood(connection: UnixConnection, bytes: number): Promise<string> {
  const chunk = encoder.encode("[".repeat(65536));
  try {
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      await connection.send(chunk, [], { deadline: performance.now() + 10_000 });
    }
    return "sent";
  } catch (error) {
    return (error as { code?: string }).code ?? (error as Error).name;
  }
}

Deno.test(
  skipUnless("hostile clients delay no other client, and leave the broker no fd", NO_BROKER_TESTS),
  leavesNothing(async () => {
    const base = Deno.makeTempDirSync({ prefix: "mountfd-hostile-" });
    const hostile: UnixConnection[] = [];
    try {
      await using broker = await startBroker(base, {
        MOUNTFD_BROKER_IDLE_TIMEOUT: "2000",
        MOUNTFD_BROKER_MAX_FDS: "8",
        MOUNTFD_BROKER_MAX_MESSAGE_BYTES: "65536",
      });
      const dir = Deno.makeTempDirSync({ dir: base });
      await goodClient(broker, dir); // its Worker and user namespace exist from now on
      const baseline = broker.fds();

      const connect = async (): Promise<UnixConnection> => {
        const connection = await UnixConnection.connect(broker.socket);
        hostile.push(connection);
        return connection;
      };
      // 100 at once, silent.
      for (let i = 0; i < 100; i++) await connect();
      // Half a message.
      await (await connect()).send(encoder.encode('{"method":"org.varlink.service.GetInfo"'));
      // 200 fds with one byte.
      const many = await connect();
      await many.send(encoder.encode("{"), Array(200).fill(many.fd));
      // Garbage, ended as a message.
      await (await connect()).send(encoder.encode("\x00\xff not json\0"));
      // 10 MB of JSON with no end.
      const flooding = flood(await connect(), 10 << 20);
      // Wrong types and unknown methods are answered, with their error names.
      const wrong = await connect();
      using dirFd = new OwnedFd(open(dir, O_RDONLY | O_DIRECTORY));
      await wrong.send(
        encodeMessage({
          method: "io.systemd.MountFileSystem.MountDirectory",
          parameters: { directoryFileDescriptor: "0", readOnly: "yes" },
        }),
        [dirFd],
      );
      await wrong.send(encodeMessage({ method: "io.systemd.MountFileSystem.Nope" }));
      await wrong.send(
        encodeMessage({
          method: "io.systemd.MountFileSystem.MountDirectory",
          parameters: { directoryFileDescriptor: 0, mode: 7 },
        }),
        [dirFd],
      );
      const replies: unknown[] = [];
      let text = "";
      while (replies.length < 3) {
        const { data, fds } = await wrong.receive({ deadline: performance.now() + 5000 });
        fds.forEach((fd) => fd.close());
        assert.ok(data.length > 0, "the broker hung up on a wrong call");
        text += new TextDecoder().decode(data);
        const parts = text.split("\0");
        text = parts.pop()!;
        replies.push(...parts.map((part) => JSON.parse(part)));
      }
      assert.deepEqual(replies, [
        {
          error: "org.varlink.service.InvalidParameter",
          parameters: { parameter: "directoryFileDescriptor" },
        },
        {
          error: "org.varlink.service.MethodNotFound",
          parameters: { method: "io.systemd.MountFileSystem.Nope" },
        },
        { error: "org.varlink.service.InvalidParameter", parameters: { parameter: "mode" } },
      ]);

      // The good client, among all of them.
      const times = await goodClient(broker, dir);
      for (const ms of times) assert.ok(ms < 1000, `the good client waited ${ms} ms`);

      // Flooding ended by the broker, not by the flood running out.
      assert.notEqual(await flooding, "sent");
      // The broker drops the rest (idle timeout), and its fds come back.
      for (const connection of hostile) connection.close();
      await eventually(
        () => broker.fds() <= baseline,
        10_000,
        () =>
          `the broker has ${broker.fds()} fds, ${baseline} before:\n${broker.log().slice(-2000)}`,
      );
      assert.match(broker.log(), /dropped: Too many fds in one message/);
      assert.match(broker.log(), /dropped: Message too long/);
      const still = await goodClient(broker, dir);
      for (const ms of still) assert.ok(ms < 1000, `the good client waited ${ms} ms after`);
    } finally {
      for (const connection of hostile) connection.close();
      Deno.removeSync(base, { recursive: true });
    }
  }),
);

Deno.test(
  skipUnless("a client that says nothing is dropped at the idle timeout", NO_BROKER_TESTS),
  leavesNothing(async () => {
    const base = Deno.makeTempDirSync({ prefix: "mountfd-hostile-" });
    try {
      await using broker = await startBroker(base, { MOUNTFD_BROKER_IDLE_TIMEOUT: "300" });
      using silent = await UnixConnection.connect(broker.socket);
      const start = performance.now();
      const { data } = await silent.receive({ deadline: performance.now() + 5000 });
      assert.equal(data.length, 0, "the broker hung up");
      assert.ok(performance.now() - start < 2000);
    } finally {
      Deno.removeSync(base, { recursive: true });
    }
  }),
);

/** Why a FUSE mount that never answers can't be made here, or `undefined`. */
const NO_FUSE: string | undefined = (() => {
  try {
    Deno.statSync("/dev/fuse");
  } catch {
    return "no /dev/fuse";
  }
  return MODE === "root" ? undefined : "/dev/fuse is root's alone";
})();

Deno.test(
  skipUnless(
    "a directory on a FUSE server that never answers stalls its own request alone",
    NO_BROKER_TESTS,
    NO_FUSE,
  ),
  leavesNothing(async () => {
    const base = Deno.makeTempDirSync({ prefix: "mountfd-hostile-" });
    const mountpoint = `${base}/fuse`;
    Deno.mkdirSync(mountpoint);
    // A FUSE mount whose server never reads /dev/fuse: every call on it waits.
    const dev = new OwnedFd(open("/dev/fuse", O_RDWR));
    let mounted = false;
    try {
      mount("hang", mountpoint, "fuse", 0, `fd=${dev.fd},rootmode=40000,user_id=0,group_id=0`);
      mounted = true;
      using dirFd = new OwnedFd(open(mountpoint, O_PATH)); // O_PATH asks the server nothing
      await using broker = await startBroker(base);
      const hung = requestDirectoryMount(dirFd, {
        socket: broker.socket,
        userns: null,
        mode: "identity",
      }).then((source) => {
        source.close();
        return "mounted";
      }, (error) => (error as VarlinkError).parameters?.errnoName);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const times = await goodClient(broker, Deno.makeTempDirSync({ dir: base }));
      for (const ms of times) assert.ok(ms < 1000, `the good client waited ${ms} ms`);
      dev.close(); // the server goes away: the stalled statx fails, and its request
      assert.equal(await hung, "ENOTCONN");
    } finally {
      dev.close();
      if (mounted) umount2(mountpoint, MNT_DETACH);
      Deno.removeSync(base, { recursive: true });
    }
  }),
);

Deno.test(
  skipUnless(
    "callers asking for ever new ids don't grow the broker's fds past its bound",
    NO_BROKER_TESTS,
  ),
  leavesNothing(async () => {
    const place = scratch(); // rootless, a tmpfs this namespace owns: one it may id-map
    const base = place.dir;
    try {
      await using broker = await startBroker(base, { MOUNTFD_BROKER_MAX_NAMESPACES: "4" });
      const dir = Deno.makeTempDirSync({ dir: base });
      await goodClient(broker, dir);
      const baseline = broker.fds();
      for (let uid = 1; uid <= 24; uid++) {
        using _source = await requestDirectoryMount(dir, {
          socket: broker.socket,
          userns: null,
          as: { uid, gid: uid },
        });
      }
      // Four cached namespaces at most (24 without the bound), and some slack for
      // the Workers and helpers of the moment.
      assert.ok(broker.fds() < baseline + 12, `${broker.fds()} fds, ${baseline} before`);
    } finally {
      place.close();
    }
  }),
);
