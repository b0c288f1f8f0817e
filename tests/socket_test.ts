/**
 * Unix sockets that carry fds (ffi/socket.ts, lib/socket/): fds both ways,
 * close-on-exec, owned by the receiver, none leaked when a message carries
 * too many; messages framed by NUL with their fds; mount sources passed
 * between two ends; the event loop free while a socket waits.
 *
 * @module
 */

import assert from "node:assert/strict";
import { O_CLOEXEC, O_RDONLY } from "../ffi/constants.ts";
import { open } from "../ffi/syscalls.ts";
import {
  attachMountSource,
  encodeMessage,
  MessageReader,
  mountFd,
  MS_BIND,
  MS_RDONLY,
  OwnedFd,
  receiveMountSources,
  sendMessage,
  sendMountSources,
  UnixConnection,
  UnixListener,
  unmount,
} from "../mod.ts";
import "./_broker.ts"; // binds the socket calls at load
import { CANNOT_MOUNT, skipUnless } from "./_env.ts";
import { Fixture } from "./_fixture.ts";
import { fdFlags, leavesNothing, openFds } from "./_leaks.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function inode(fd: number): string {
  const { dev, ino } = Deno.statSync(`/proc/self/fd/${fd}`);
  return `${dev}:${ino}`;
}

Deno.test(
  "fds sent with bytes arrive as new fds of the same files, close-on-exec, owned by the receiver",
  leavesNothing(async () => {
    const [a, b] = UnixConnection.pair();
    using file = new OwnedFd(open("/etc/hostname", O_RDONLY));
    try {
      await a.send(encoder.encode("hello"), [file, a.fd]);
      const { data, fds } = await b.receive();
      assert.equal(decoder.decode(data), "hello");
      assert.equal(fds.length, 2);
      assert.equal(inode(fds[0].fd), inode(file.fd));
      assert.notEqual(fds[0].fd, file.fd);
      for (const fd of fds) assert.ok(fdFlags(fd.fd) & O_CLOEXEC, `fd ${fd.fd} is close-on-exec`);
      for (const fd of fds) fd.close();
      assert.ok(fdFlags(a.fd) & O_CLOEXEC);
    } finally {
      a.close();
      b.close();
    }
  }),
);

Deno.test(
  "a message with more fds than allowed is refused, and every fd it carried is closed",
  leavesNothing(async () => {
    const [a, b] = UnixConnection.pair();
    try {
      const before = openFds().size;
      await a.send(encoder.encode("x"), Array(200).fill(a.fd));
      await assert.rejects(b.receive({ maxFds: 8 }), /Too many fds in one message: more than 8/);
      assert.equal(openFds().size, before);
    } finally {
      a.close();
      b.close();
    }
  }),
);

Deno.test(
  "messages keep their own fds, sent back to back",
  leavesNothing(async () => {
    const [a, b] = UnixConnection.pair();
    const reader = new MessageReader(b, { maxMessageBytes: 1024, maxFds: 4 });
    try {
      await sendMessage(a, { n: 1 });
      await sendMessage(a, { n: 2 }, [a.fd, a.fd]);
      await sendMessage(a, { n: 3 });
      await sendMessage(a, { n: 4 }, [a.fd]);
      const got = [];
      for (let i = 0; i < 4; i++) {
        const message = (await reader.next())!;
        got.push([(message.value as { n: number }).n, message.fds.length]);
        message.fds.forEach((fd) => fd.close());
      }
      assert.deepEqual(got, [[1, 0], [2, 2], [3, 0], [4, 1]]);
      a.close();
      assert.equal(await reader.next(), undefined, "the end of the stream, between messages");
    } finally {
      reader.close();
      a.close();
      b.close();
    }
  }),
);

Deno.test(
  "too long, not JSON, not an object, cut short: each refused, its fds closed",
  leavesNothing(async () => {
    const cases: [Uint8Array, RegExp][] = [
      [encoder.encode("x".repeat(5000)), /Message too long/],
      [encoder.encode("{nope\0"), /JSON/],
      [encoder.encode("[1,2]\0"), /must be a JSON object/],
      [encoder.encode('{"a":'), /ended inside a message/],
    ];
    using file = new OwnedFd(open("/etc/hostname", O_RDONLY));
    for (const [bytes, error] of cases) {
      const [a, b] = UnixConnection.pair();
      const reader = new MessageReader(b, { maxMessageBytes: 1024, maxFds: 4 });
      try {
        await a.send(bytes, [file]);
        a.close();
        await assert.rejects(reader.next({ deadline: performance.now() + 5000 }), error);
      } finally {
        reader.close();
        b.close();
      }
    }
  }),
);

Deno.test(
  "mount sources go both ways with their type and mount",
  leavesNothing(async () => {
    const [a, b] = UnixConnection.pair();
    const readerA = new MessageReader(a, { maxMessageBytes: 65536, maxFds: 4 });
    const readerB = new MessageReader(b, { maxMessageBytes: 65536, maxFds: 4 });
    try {
      using source = await mountFd({ source: "/etc", destination: "/etc", flags: MS_BIND });
      await sendMountSources(a, [source], { to: "b" });
      const there = (await receiveMountSources(readerB))!;
      assert.deepEqual(there.message, { to: "b" });
      assert.equal(there.sources.length, 1);
      using got = there.sources[0];
      assert.equal(got.type, "plain-open");
      assert.equal(got.mount.source, "/etc");
      assert.equal(inode(got.fd), inode(source.fd));
      await sendMountSources(b, [got], "back");
      const back = (await receiveMountSources(readerA))!;
      assert.equal(back.message, "back");
      assert.equal(inode(back.sources[0].fd), inode(source.fd));
      back.sources.forEach((s) => s.close());
    } finally {
      readerA.close();
      readerB.close();
      a.close();
      b.close();
    }
  }),
);

Deno.test(
  skipUnless("a detached mount received keeps its flags when attached", CANNOT_MOUNT),
  leavesNothing(async () => {
    using fixture = Fixture.create();
    const src = fixture.mkdir("src");
    const dst = fixture.mkdir("dst");
    const [a, b] = UnixConnection.pair();
    const reader = new MessageReader(b, { maxMessageBytes: 65536, maxFds: 4 });
    try {
      using source = await mountFd({ source: src, destination: "/x", flags: MS_BIND | MS_RDONLY });
      await sendMountSources(a, [source]);
      const [got] = (await receiveMountSources(reader))!.sources;
      using received = got;
      assert.equal(received.type, "open_tree");
      attachMountSource(received, dst);
      assert.throws(() => Deno.writeTextFileSync(`${dst}/f`, "x"), { code: "EROFS" });
      unmount(dst, { detach: true });
    } finally {
      reader.close();
      a.close();
      b.close();
    }
  }),
);

Deno.test(
  "a listener's peer is this process; a wait for data leaves the event loop free",
  leavesNothing(async () => {
    const dir = Deno.makeTempDirSync();
    const path = `${dir}/s.sock`;
    try {
      using listener = UnixListener.listen(path);
      const accepted = listener.accept();
      using client = await UnixConnection.connect(path);
      using server = (await accepted)!;
      assert.deepEqual(server.peer(), { pid: Deno.pid, uid: Deno.uid(), gid: Deno.gid() });
      const pidfd = server.peerPidfd();
      if (pidfd !== undefined) {
        assert.ok(fdFlags(pidfd.fd) & O_CLOEXEC);
        pidfd.close();
      }
      const waiting = server.receive();
      const start = performance.now();
      for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(performance.now() - start < 500, "timers ran while the socket waited");
      await client.send(encodeMessage({ late: true }));
      assert.equal(decoder.decode((await waiting).data), '{"late":true}\0');
      // A wait in progress ends when its connection closes.
      const pending = server.receive();
      server.close();
      await assert.rejects(pending, Deno.errors.BadResource);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }),
);
