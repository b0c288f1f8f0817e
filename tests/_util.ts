/**
 * Shared test helpers: privilege mode, fixtures on a real filesystem or a
 * tmpfs, and leak counters for raw fds and helper processes.
 *
 * @module
 */

import { MNT_DETACH } from "../ffi/constants.ts";
import { mount, umount2 } from "../ffi/syscalls.ts";
import type { Mapping } from "../mod.ts";

/** The id ranges of this process's user namespace, from /proc/self/uid_map. */
function readMap(path: string): { inside: number; outside: number; size: number }[] {
  return Deno.readTextFileSync(path).trim().split("\n").map((line) => {
    const [inside, outside, size] = line.trim().split(/\s+/).map(Number);
    return { inside, outside, size };
  });
}

const uidMap = readMap("/proc/self/uid_map");

/** `"root"` in the initial user namespace, `"rootless"` in a child one. */
export const MODE: "root" | "rootless" =
  uidMap.length === 1 && uidMap[0].inside === 0 && uidMap[0].outside === 0 &&
    uidMap[0].size === 4294967295
    ? "root"
    : "rootless";

/** How many uids this namespace maps: 1 without a subordinate range. */
export const MAPPED_IDS: number = uidMap.reduce((n, { size }) => n + size, 0);

/** The id the kernel shows for an unmapped one. */
export const OVERFLOW_ID: number = Number(
  Deno.readTextFileSync("/proc/sys/kernel/overflowuid").trim(),
);

/**
 * Why this process may not mount, or `undefined` if it may: it must be root
 * of its user namespace, in a mount namespace of its own.
 */
export const CANNOT_MOUNT: string | undefined = (() => {
  if (Deno.uid() !== 0) return "not root of its user namespace";
  let parent: string | undefined;
  try {
    parent = Deno.readLinkSync(`/proc/${Deno.ppid}/ns/mnt`);
  } catch {
    // Unreadable from a child user namespace: a mount namespace of its own.
  }
  if (parent === Deno.readLinkSync("/proc/self/ns/mnt")) {
    return "in the mount namespace of the parent process; run the suite with " +
      "`deno task test`, which gives it a private one";
  }
  return undefined;
})();

/** Why tests that need a range of ids can't run, or `undefined` if they can. */
export const NO_ID_RANGE: string | undefined = MAPPED_IDS >= 65536
  ? undefined
  : `this user namespace maps ${MAPPED_IDS} id(s); a subordinate id range ` +
    "(/etc/subuid, /etc/subgid) is needed";

const printed = new Set<string>();

/**
 * Whether a test can run; prints why not, once per reason.
 *
 * @param reasons Reasons it can't, `undefined` where there is none.
 * @returns `true` to ignore the test.
 */
export function skipUnless(...reasons: (string | undefined)[]): boolean {
  const reason = reasons.find((r) => r !== undefined);
  if (reason === undefined) return false;
  if (!printed.has(reason)) {
    printed.add(reason);
    console.log(`%cskipping: ${reason}`, "color: yellow");
  }
  return true;
}

const FD_DIR = `/proc/${Deno.pid}/fd`;

/** The fd numbers open in this process now, but the one listing them. */
export function openFds(): Set<number> {
  const fds = new Set<number>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === FD_DIR) continue;
    } catch {
      continue; // the listing's own fd, closed already
    }
    fds.add(Number(entry.name));
  }
  return fds;
}

/**
 * What Deno keeps open after a Worker ends: the event loop of the last Worker
 * (an eventpoll and an eventfd), closed only when the next Worker starts.
 * This module opens no such fd.
 */
const DENO_WORKER_FDS = new Set(["anon_inode:[eventpoll]", "anon_inode:[eventfd]"]);

/**
 * The fds opened since `before`, closed ones and Deno's own Worker event
 * loops aside.
 *
 * @param before A snapshot from {@linkcode openFds}.
 * @returns The new fds, each with what it points at.
 */
export function newFds(before: Set<number>): string[] {
  const leaked: string[] = [];
  for (const fd of openFds()) {
    if (before.has(fd)) continue;
    let what = "?";
    try {
      what = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (DENO_WORKER_FDS.has(what)) continue;
    leaked.push(`${fd} -> ${what}`);
  }
  return leaked;
}

/** The pids of this process's live children, zombies included. */
export function childPids(): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue;
    }
    // The comm field may hold spaces and parens: parse after its last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === Deno.pid) children.push(Number(entry.name));
  }
  return children;
}

/**
 * The open flags of an fd of this process, from /proc/self/fdinfo.
 *
 * @param fd The fd.
 * @returns Its `flags:` field.
 */
export function fdFlags(fd: number): number {
  const info = Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`);
  const match = info.match(/^flags:\s+([0-7]+)$/m);
  if (!match) throw new Error(`No flags in /proc/self/fdinfo/${fd}: ${info}`);
  return parseInt(match[1], 8);
}

/**
 * The fds a freshly spawned child inherits: `sleep` opens none of its own, so
 * its /proc/PID/fd, read from here, is what it was given.
 *
 * @returns The child's fd numbers, sorted.
 */
export async function childFds(): Promise<number[]> {
  const child = new Deno.Command("sleep", { args: ["10"], stdout: "inherit" }).spawn();
  try {
    // Wait for the exec, so the fds are sleep's and not Deno's pre-exec child's.
    while (!Deno.readLinkSync(`/proc/${child.pid}/exe`).endsWith("/sleep")) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return [...Deno.readDirSync(`/proc/${child.pid}/fd`)].map((e) => Number(e.name))
      .sort((a, b) => a - b);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

/** Owner of a path as `"uid:gid"`, without following a final symlink. */
export function owner(path: string): string {
  const { uid, gid } = Deno.lstatSync(path);
  return `${uid}:${gid}`;
}

/**
 * A scratch directory for one test: on the real filesystem as root, on a
 * tmpfs this process mounts when rootless (the kernel lets a user namespace
 * id-map only a filesystem it owns). It unmounts and removes everything on
 * dispose.
 */
export class Fixture {
  /** The directory. */
  readonly dir: string;
  readonly #mounts: string[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Makes the scratch directory.
   *
   * @returns The fixture.
   */
  static create(): Fixture {
    const fixture = new Fixture(Deno.makeTempDirSync({ prefix: "mountfd-test-" }));
    if (MODE === "rootless") fixture.mountTmpfs(fixture.dir);
    return fixture;
  }

  /**
   * Mounts a tmpfs at `target`, unmounted on dispose.
   *
   * @param target The mount point.
   */
  mountTmpfs(target: string): void {
    mount("tmpfs", target, "tmpfs", 0, "mode=0755,size=16m");
    this.#mounts.push(target);
  }

  /**
   * Notes a mount made at `target`, to detach on dispose.
   *
   * @param target The mount point.
   */
  track(target: string): void {
    this.#mounts.push(target);
  }

  /**
   * Makes a directory (and its parents) inside the fixture.
   *
   * @param rel The path, relative to the fixture.
   * @returns The absolute path.
   */
  mkdir(rel: string): string {
    const path = `${this.dir}/${rel}`;
    Deno.mkdirSync(path, { recursive: true });
    return path;
  }

  /**
   * Writes a file inside the fixture, owned by `uid:gid`.
   *
   * @param rel The path, relative to the fixture.
   * @param uid The owner.
   * @param gid The group.
   * @returns The absolute path.
   */
  file(rel: string, uid = 0, gid = uid): string {
    const path = `${this.dir}/${rel}`;
    Deno.writeTextFileSync(path, rel);
    Deno.chownSync(path, uid, gid);
    return path;
  }

  /** Detaches every mount, innermost first, and removes the directory. */
  [Symbol.dispose](): void {
    for (const target of this.#mounts.reverse()) {
      try {
        umount2(target, MNT_DETACH);
      } catch {
        // Already gone with a parent.
      }
    }
    Deno.removeSync(this.dir, { recursive: true });
  }
}

/**
 * Detaches the mount at `target` (MNT_DETACH).
 *
 * @param target The mount point.
 */
export function MNT_DETACH_UMOUNT(target: string): void {
  umount2(target, MNT_DETACH);
}

/** The usual test mapping: ids 0..1999 on disk show as 10000..11999. */
export const BASE = 10000;

/**
 * A mapping of one range, for both uids and gids.
 *
 * @param containerID The first id on disk.
 * @param hostID The first id seen through the mount.
 * @param size The number of ids.
 * @returns The mapping.
 */
export function simpleMapping(
  containerID = 0,
  hostID = BASE,
  size = 2000,
): Mapping {
  const range = { containerID, hostID, size };
  return { uidMappings: [range], gidMappings: [{ ...range }] };
}
