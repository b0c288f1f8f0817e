/**
 * The mount broker's Worker: the filesystem calls on a client's directory fd
 * (statx, open_tree, mount_setattr), off the main thread, so that a directory
 * on a filesystem that hangs stalls its own request and no other. Each job is
 * synchronous here; the main thread gives up on a Worker that takes too long.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  CLONE_FS,
  CLONE_NEWNS,
  MOUNT_ATTR_IDMAP,
  MS_PRIVATE,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
  OPEN_TREE_CLONE,
  S_IFDIR,
  S_IFMT,
} from "../../ffi/constants.ts";
import { type Owner, statOwner } from "../../ffi/owner.ts";
import { close, open, openAt, setns, unshare } from "../../ffi/syscalls.ts";
import { mountSetattr, openTree } from "../../ffi/mount_api.ts";

/** The first id of the foreign range, and its size. */
export const FOREIGN_BASE = 0x7FFE0000;
/** The size of the foreign range. */
export const FOREIGN_SIZE = 0x10000;

/** How a directory is owned, relative to the peer. */
export type Ownership = "peer" | "foreign" | "other";

/** A job for the Worker. */
export type Job =
  | { id: number; op: "inspect"; dir: number; peerUid: number }
  | {
    id: number;
    op: "clone";
    dir: number;
    pidfd: number;
    userns: number;
    attrSet: number;
    expectUid: number;
  };

/** The Worker's answer. */
export type Answer =
  | { id: number; ok: true; uid: number; gid: number; directory: boolean; ownership: Ownership }
  | { id: number; ok: true; fd: number }
  | { id: number; ok: false; message: string; op?: string; errno?: number; code?: string };

/**
 * Classifies a directory as systemd's mountfsd does: owned by the peer;
 * foreign-owned with an ancestor on the same mount owned by the peer (16
 * levels at most); or otherwise.
 */
function ownership(dir: number, stx: Owner, peerUid: number): Ownership {
  if (stx.uid === peerUid) return "peer";
  const foreign = (id: number) => id >= FOREIGN_BASE && id < FOREIGN_BASE + FOREIGN_SIZE;
  let fd = -1;
  let current = stx;
  try {
    for (let level = 0; level < 16; level++) {
      if (current.mountRoot || !foreign(current.uid) || !foreign(current.gid)) return "other";
      const up = openAt(fd < 0 ? dir : fd, "..", O_PATH | O_DIRECTORY);
      if (fd >= 0) close(fd);
      fd = up;
      const next = statOwner(fd);
      if (next.ino === current.ino && next.dev === current.dev) return "other";
      if (next.mountId !== current.mountId) return "other";
      if (next.uid === peerUid) return "foreign";
      current = next;
    }
    return "other";
  } finally {
    if (fd >= 0) close(fd);
  }
}

let ownMountNamespace = -1;

/**
 * A detached clone of the directory: in this thread's mount namespace, or,
 * where open_tree refuses a directory of another one (EINVAL), in the peer's,
 * joined for the call through its pidfd, as mountfsd does.
 */
function cloneTree(dir: number, pidfd: number): number {
  const flags = OPEN_TREE_CLONE | AT_EMPTY_PATH;
  try {
    return openTree(dir, "", flags);
  } catch (error) {
    if ((error as { code?: string }).code !== "EINVAL" || pidfd < 0) throw error;
  }
  if (ownMountNamespace < 0) {
    unshare(CLONE_FS); // this thread alone changes its mount namespace
    ownMountNamespace = open("/proc/thread-self/ns/mnt", O_RDONLY);
  }
  setns(pidfd, CLONE_NEWNS, "peer pidfd");
  try {
    return openTree(dir, "", flags);
  } finally {
    setns(ownMountNamespace, CLONE_NEWNS, "/proc/thread-self/ns/mnt");
  }
}

function run(job: Job): Answer {
  const stx = statOwner(job.dir);
  if (job.op === "inspect") {
    const directory = (stx.mode & S_IFMT) === S_IFDIR;
    return {
      id: job.id,
      ok: true,
      uid: stx.uid,
      gid: stx.gid,
      directory,
      ownership: directory ? ownership(job.dir, stx, job.peerUid) : "other",
    };
  }
  const tree = cloneTree(job.dir, job.pidfd);
  try {
    // The same directory still, with the owner that was checked.
    if (statOwner(tree).uid !== job.expectUid) {
      throw Object.assign(new Error("The directory's owner changed"), {
        errno: 1,
        code: "EPERM",
      });
    }
    const idmap = job.userns >= 0 ? MOUNT_ATTR_IDMAP : 0;
    mountSetattr(tree, "", AT_EMPTY_PATH, {
      attrSet: job.attrSet | idmap,
      propagation: MS_PRIVATE,
      usernsFd: job.userns >= 0 ? job.userns : 0,
    });
    return { id: job.id, ok: true, fd: tree };
  } catch (error) {
    close(tree);
    throw error;
  }
}

/** What a Worker's global scope offers this module. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<Job>) => void) | null;
  postMessage(message: Answer): void;
}

if (import.meta.main) {
  const scope = globalThis as unknown as WorkerScope;
  // Receives one job at a time and answers it.
  scope.onmessage = (event) => {
    const job = event.data;
    let answer: Answer;
    try {
      answer = run(job);
    } catch (error) {
      const { op, errno, code, message } = error as {
        op?: string;
        errno?: number;
        code?: string;
        message: string;
      };
      answer = { id: job.id, ok: false, message, op, errno, code };
    }
    scope.postMessage(answer);
  };
}
