/**
 * Leak probes: raw fds (Deno's sanitizers don't see them) and helper
 * processes of this process, and the fds a child inherits.
 *
 * @module
 */

import assert from "node:assert/strict";

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

/** Whether `pid` runs `sleep` and sleeps (state S): its exec is over. */
function asleep(pid: number): boolean {
  if (!Deno.readLinkSync(`/proc/${pid}/exe`).endsWith("/sleep")) return false;
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("S");
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
    // Wait until sleep sleeps: the exec is over then. The kernel switches
    // /proc/PID/exe before it closes the close-on-exec fds, so the exe alone
    // can show an fd that the exec is about to close.
    while (!asleep(child.pid)) await new Promise((resolve) => setTimeout(resolve, 1));
    return [...Deno.readDirSync(`/proc/${child.pid}/fd`)].map((e) => Number(e.name))
      .sort((a, b) => a - b);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

/**
 * A test body that runs `fn` and fails if it leaves an fd open or a child
 * process behind.
 *
 * @param fn The body to check.
 * @returns The checked body, for `Deno.test`.
 */
export function leavesNothing(fn: () => Promise<void> | void): () => Promise<void> {
  return async () => {
    const before = openFds();
    await fn();
    assert.deepEqual(newFds(before), [], "fds leaked");
    assert.deepEqual(childPids(), [], "helper processes left");
  };
}
