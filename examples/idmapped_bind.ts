/**
 * Demo: an id-mapped bind mount, and the owners it shows.
 *
 *     deno run --allow-ffi --allow-run --allow-read --allow-write examples/idmapped_bind.ts
 *
 * It makes a tmpfs with files owned by several ids, makes an id-mapped mount
 * source of it (ids 0..1999 on disk show as 10000..11999), attaches it, and
 * prints each file's owner on disk and through the mount. Then it makes the
 * same mount read-only with `mountInto`, which sets `MS_RDONLY` on the
 * detached tree before attaching it, and shows that a write is refused.
 *
 * It needs a private mount namespace where it may mount: as root, it re-runs
 * itself under `unshare --mount`; as a user with a subordinate id range, under
 * `unshare --user --map-auto --map-root-user --mount`. Already root of a user
 * namespace (say, inside that unshare), it runs as it is.
 *
 * @module
 */

import {
  attachMountSource,
  Handles,
  type Mount,
  mountFd,
  mountInto,
  MS_BIND,
  MS_RDONLY,
  unmount,
} from "../mod.ts";

/**
 * The output of a program: the demo mounts its tmpfs with `mount`, and reads
 * /proc with `cat` (Deno's own file APIs need --allow-all there).
 */
function output(program: string, ...args: string[]): string {
  const { success, stdout, stderr } = new Deno.Command(program, { args }).outputSync();
  const text = new TextDecoder().decode(success ? stdout : stderr);
  if (!success) throw new Error(`${program} ${args.join(" ")} failed: ${text.trim()}`);
  return text;
}

const INNER = "--inner";
const MAPPING = { containerID: 0, hostID: 10000, size: 2000 };
const FILES: [string, number][] = [
  ["root.txt", 0],
  ["daemon.txt", 1],
  ["alice.txt", 1000],
  ["bob.txt", 1001],
  ["outside.txt", 3000],
];

/** The user namespace this process is in: the initial one, or a child. */
function inInitialUserns(): boolean {
  return output("cat", "/proc/self/uid_map").trim().split(/\s+/).join(" ") ===
    "0 0 4294967295";
}

function hasSubordinateRange(): boolean {
  const uid = output("id", "-u").trim();
  const user = Deno.readTextFileSync("/etc/passwd").split("\n")
    .find((line) => line.split(":")[2] === uid)?.split(":")[0];
  try {
    return Deno.readTextFileSync("/etc/subuid").split("\n").some((line) => {
      const [owner, , count] = line.split(":");
      return (owner === uid || owner === user) && Number(count) >= 65536;
    });
  } catch {
    return false;
  }
}

/** Re-runs this demo inside `unshare ARGS`, and exits with its status. */
async function rerunUnder(args: string[]): Promise<never> {
  const self = new URL(import.meta.url).pathname;
  const { code } = await new Deno.Command("unshare", {
    args: [
      ...args,
      "--",
      Deno.execPath(),
      "run",
      "--allow-ffi",
      "--allow-run",
      "--allow-read",
      "--allow-write",
      self,
      INNER,
    ],
  }).spawn().status;
  Deno.exit(code);
}

/** The per-mount options of the mount at `target`, from /proc/self/mountinfo. */
function mountOptions(target: string): string {
  const line = output("cat", "/proc/self/mountinfo").trim().split("\n")
    .findLast((l) => l.split(" ")[4] === target);
  return line?.split(" ")[5] ?? "(not mounted)";
}

function pad(text: string, width: number): string {
  return text + " ".repeat(Math.max(1, width - text.length));
}

async function demo(): Promise<void> {
  const base = Deno.makeTempDirSync({ prefix: "mountfd-demo-" });
  const disk = `${base}/disk`;
  const view = `${base}/view`;
  const readOnly = `${base}/ro`;
  const mounted: string[] = [];
  try {
    Deno.mkdirSync(disk);
    Deno.mkdirSync(view);
    Deno.mkdirSync(readOnly);
    output("mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "tmpfs", disk);
    mounted.push(disk);
    for (const [name, id] of FILES) {
      Deno.writeTextFileSync(`${disk}/${name}`, `owned by ${id}\n`);
      Deno.chownSync(`${disk}/${name}`, id, id);
    }

    const bind: Mount = {
      source: disk,
      destination: "/data",
      flags: MS_BIND,
      idMapping: { uidMappings: [MAPPING], gidMappings: [MAPPING] },
    };
    using handles = new Handles();
    using source = await mountFd(bind, { handles });
    attachMountSource(source, view);
    mounted.push(view);

    const { containerID, hostID, size } = MAPPING;
    console.log(
      `id-mapped bind mount (uid and gid map ${containerID}:${hostID}:${size}, ` +
        `${source.type} source, fd ${source.fd})`,
    );
    console.log(`  on disk:           ${disk}`);
    console.log(`  through the mount: ${view}\n`);
    console.log(pad("file", 14) + pad("owner on disk", 16) + "owner through the mount");
    for (const [name] of FILES) {
      const onDisk = Deno.statSync(`${disk}/${name}`);
      const through = Deno.statSync(`${view}/${name}`);
      console.log(
        pad(name, 14) + pad(`${onDisk.uid}:${onDisk.gid}`, 16) + `${through.uid}:${through.gid}`,
      );
    }
    console.log(
      `\nIds ${containerID}..${containerID + size - 1} on disk show as ` +
        `${hostID}..${hostID + size - 1}; others show as the overflow id.`,
    );

    // The whole mount in one call: MS_RDONLY goes on the detached tree
    // before move_mount, so the mount is never writable, not even briefly.
    await mountInto({ ...bind, flags: MS_BIND | MS_RDONLY }, readOnly, { handles });
    mounted.push(readOnly);
    const [name] = FILES[0];
    const through = Deno.statSync(`${readOnly}/${name}`);
    let write: string;
    try {
      Deno.writeTextFileSync(`${readOnly}/${name}`, "changed\n");
      write = "allowed (unexpected)";
    } catch (error) {
      write = error instanceof Error && /os error 30/.test(error.message)
        ? "refused: EROFS"
        : `failed: ${error}`;
    }
    console.log(`\nread-only id-mapped mount (mountInto with MS_RDONLY)`);
    for (
      const [label, value] of [
        ["mounted at:", readOnly],
        ["mount options:", mountOptions(readOnly)],
        [`owner of ${name}:`, `${through.uid}:${through.gid}`],
        [`write to ${name}:`, write],
      ]
    ) {
      console.log("  " + pad(label, 20) + value);
    }
  } finally {
    for (const target of mounted.reverse()) unmount(target, { detach: true });
    Deno.removeSync(base, { recursive: true });
  }
}

if (import.meta.main) {
  const root = output("id", "-u").trim() === "0";
  if (Deno.args.includes(INNER) || (root && !inInitialUserns())) {
    await demo();
  } else if (root) {
    await rerunUnder(["--mount", "--propagation", "private"]);
  } else if (hasSubordinateRange()) {
    await rerunUnder(["--user", "--map-auto", "--map-root-user", "--mount"]);
  } else {
    console.error(
      "This demo mounts, so it needs a private mount namespace where it may:\n" +
        "  - run it as root, or\n" +
        "  - give your user a subordinate id range of 65536 in /etc/subuid and " +
        "/etc/subgid (and install newuidmap, Debian package uidmap), then run it " +
        "as that user.",
    );
    Deno.exit(1);
  }
}
