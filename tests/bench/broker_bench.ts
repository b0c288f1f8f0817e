/**
 * `deno task bench`: a MountDirectory round trip through the mount broker
 * (connect, request, receive, attach) beside the same mount made in-process
 * (mountFd and attachMountSource); and requests per second with 8 clients
 * at once. The broker runs in a process of its own; the caller is root (of
 * its user namespace when rootless), so the broker's policy lets it through.
 *
 * @module
 */

import {
  attachMountSource,
  Handles,
  mountFd,
  MS_BIND,
  requestDirectoryMount,
  unmount,
} from "../../mod.ts";
import { startBroker } from "../_broker.ts";
import { makeScratch } from "./_scratch.ts";

const scratch = makeScratch();
const src = `${scratch.dir}/src`;
const dst = `${scratch.dir}/dst`;
Deno.mkdirSync(src);
Deno.mkdirSync(dst);
Deno.writeTextFileSync(`${src}/file`, "data");
const broker = await startBroker(scratch.dir);
const handles = new Handles();
// The caller's user namespace: root's files show as 0 there, as HOST outside
// (rootless, an id of this namespace's range).
const HOST = scratch.mode === "root" ? 100000 : 1000;
const ids = [{ containerID: 0, hostID: HOST, size: 1000 }];
const userns = await handles.get({ uidMappings: ids, gidMappings: ids });
const one = [{ containerID: 0, hostID: HOST, size: 1 }];
const request = { socket: broker.socket, userns, mode: "root" as const };

Deno.bench({
  name: "broker: connect, MountDirectory, receive, attach",
  group: "MountDirectory round trip",
  async fn(b): Promise<void> {
    b.start();
    using source = await requestDirectoryMount(src, request);
    attachMountSource(source, dst);
    b.end();
    unmount(dst, { detach: true });
  },
});

Deno.bench({
  name: "in-process: mountFd (id-mapped, cached user namespace), attach",
  group: "MountDirectory round trip",
  baseline: true,
  async fn(b): Promise<void> {
    b.start();
    using source = await mountFd({
      source: src,
      destination: dst,
      flags: MS_BIND,
      idMapping: { uidMappings: one, gidMappings: one },
    }, { handles });
    attachMountSource(source, dst);
    b.end();
    unmount(dst, { detach: true });
  },
});

Deno.bench({
  name: "broker: 8 clients at once, one MountDirectory each (8 requests an iteration)",
  group: "throughput",
  async fn(): Promise<void> {
    const sources = await Promise.all(
      Array.from({ length: 8 }, () => requestDirectoryMount(src, request)),
    );
    for (const source of sources) source.close();
  },
});

globalThis.addEventListener("unload", () => {
  userns.close();
  handles.release();
  scratch.close();
});
// The broker is stopped (SIGTERM) as the bench process ends.
globalThis.addEventListener("beforeunload", () => void broker[Symbol.asyncDispose]());
