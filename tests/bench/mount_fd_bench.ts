/**
 * `deno task bench`: each library operation beside a baseline that makes the
 * same syscalls through a bare `Deno.dlopen`, in one run. Run as root (or as
 * root of a user namespace with a subordinate id range).
 *
 * @module
 */

import { Handles, type Mapping, type Mount, mountFd, MS_BIND } from "../../mod.ts";

const bare = Deno.dlopen("libc.so.6", {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  open_tree: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  mount_setattr: { parameters: ["i32", "buffer", "u32", "buffer", "usize"], result: "i32" },
}).symbols;

const O_PATH_CLOEXEC = 0o10000000 | 0o2000000;
const OPEN_TREE = 1 | 0o2000000; // OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
const AT_EMPTY_PATH = 0x1000;
const F_DUPFD_CLOEXEC = 1030;

const dir = Deno.makeTempDirSync({ prefix: "mountfd-bench-" });
const cdir = new TextEncoder().encode(dir + "\0");
const empty = new Uint8Array([0]);

const mapping: Mapping = {
  uidMappings: [{ containerID: 0, hostID: 10000, size: 2000 }],
  gidMappings: [{ containerID: 0, hostID: 10000, size: 2000 }],
};
const plain: Mount = { source: dir, destination: "/d", flags: MS_BIND };
const idmapped: Mount = { ...plain, idMapping: mapping };

const handles = new Handles();
const warm = await handles.get(mapping);
const attr = new BigUint64Array([0x100000n, 0n, 0n, BigInt(warm.fd)]); // MOUNT_ATTR_IDMAP
const attrBytes = new Uint8Array(attr.buffer);

let next = 0;
/** A mapping no earlier iteration used. */
function freshMapping(): Mapping {
  const hostID = 20000 + (next++ % 40000);
  const range = [{ containerID: 0, hostID, size: 1 }];
  return { uidMappings: range, gidMappings: range };
}

async function bareHelper(): Promise<void> {
  const child = new Deno.Command("unshare", {
    args: ["--user", "--", "cat"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  await writer.write(new Uint8Array([0x2e]));
  await reader.read();
  await writer.close();
  while (!(await reader.read()).done);
  await child.status;
}

Deno.bench("plain mountFd + close", { group: "plain", n: 20000 }, async () => {
  (await mountFd(plain)).close();
});
Deno.bench("open(O_PATH) + close", { group: "plain", baseline: true, n: 20000 }, () => {
  bare.close(bare.open(cdir, O_PATH_CLOEXEC, 0));
});

Deno.bench("idmapped mountFd, warm cache + close", { group: "idmapped", n: 5000 }, async () => {
  (await mountFd(idmapped, { handles })).close();
});
Deno.bench(
  "open_tree + mount_setattr + close",
  { group: "idmapped", baseline: true, n: 5000 },
  () => {
    const fd = bare.open_tree(-100, cdir, OPEN_TREE);
    bare.mount_setattr(fd, empty, AT_EMPTY_PATH, attrBytes, 32n);
    bare.close(fd);
  },
);

Deno.bench("cached Handles.get + close", { group: "cached get", n: 50000 }, async () => {
  (await handles.get(mapping)).close();
});
Deno.bench(
  "fcntl(F_DUPFD_CLOEXEC) + close",
  { group: "cached get", baseline: true, n: 50000 },
  () => {
    bare.close(bare.fcntl(warm.fd, F_DUPFD_CLOEXEC, 0));
  },
);

Deno.bench("new-mapping Handles.get", { group: "new mapping", n: 200 }, async () => {
  using fresh = new Handles();
  (await fresh.get(freshMapping())).close();
});
Deno.bench(
  "bare spawn of the helper (unshare --user cat)",
  { group: "new mapping", baseline: true, n: 200 },
  async () => {
    await bareHelper();
  },
);

globalThis.addEventListener("unload", () => {
  warm.close();
  handles.release();
  Deno.removeSync(dir, { recursive: true });
});
