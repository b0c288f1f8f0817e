/**
 * The process behind a mount namespace opened as `/proc/PID/ns/mnt`: its
 * root, pinned when the namespace is opened (a target's `"/"` is that root,
 * whether its runtime used pivot_root, MS_MOVE or only chroot), and the ids
 * that own the mount points made there (0 of its user namespace, as runc and
 * crun make them).
 *
 * @module
 */

import { AT_FDCWD, O_DIRECTORY, O_PATH } from "../../ffi/constants.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { close, namespaceOwner, open, readlinkAt, readText } from "../../ffi/syscalls.ts";
import { OwnedFd } from "../fd.ts";
import { outsideOf, parseIDMap } from "../userns/idmap.ts";
import { WORKER_OP } from "./rpc.ts";

const PROC_MNTNS = /^\/proc\/(\d+|self)\/ns\/mnt$/;

/** The root of a namespace's process, and the owner of what is made there. */
export interface NamespaceProcess {
  /** The process, as its /proc directory names it. */
  pid: string;
  /** Its root, `/proc/PID/root`, opened `O_PATH`. */
  root: OwnedFd;
  /** The ids that are 0 in the user namespace that owns the mount namespace. */
  owner?: { uid: number; gid: number };
}

/**
 * The process of a namespace path of the form `/proc/PID/ns/mnt`.
 *
 * @param nsPath The namespace file.
 * @param nsFd An fd of it (not `O_PATH`).
 * @returns The process, or `undefined` for a path of another form.
 * @throws {MountError} With op `"open"` if its root can't be opened.
 */
export function namespaceProcess(nsPath: string, nsFd: number): NamespaceProcess | undefined {
  const pid = PROC_MNTNS.exec(nsPath)?.[1];
  if (pid === undefined) return undefined;
  const root = new OwnedFd(open(`/proc/${pid}/root`, O_PATH | O_DIRECTORY));
  try {
    return { pid, root, owner: ownerIn(pid, nsFd, nsPath) };
  } catch (error) {
    root.close();
    throw error;
  }
}

/**
 * Checks, once the namespace is joined, that its process is still in it: the
 * root pinned before is then the root of a process of that namespace.
 *
 * @param process The process.
 * @param namespace The namespace joined, as `mnt:[N]`.
 * @param nsPath The namespace file, for the error.
 * @throws {MountError} If the process left the namespace, or exited.
 */
export function assertStillIn(process: NamespaceProcess, namespace: string, nsPath: string): void {
  let now: string | undefined;
  try {
    now = readlinkAt(AT_FDCWD, `/proc/${process.pid}/ns/mnt`);
  } catch {
    // Exited.
  }
  if (now === namespace) return;
  throw new MountError(WORKER_OP, {
    target: nsPath,
    detail: `process ${process.pid} left the mount namespace, or exited, while it was opened`,
  });
}

/**
 * The ids that are 0 in the user namespace owning the mount namespace, as
 * ids of the caller's: from `/proc/PID/uid_map` and `gid_map`, when that
 * user namespace is the process's own and not the caller's.
 */
function ownerIn(
  pid: string,
  nsFd: number,
  nsPath: string,
): { uid: number; gid: number } | undefined {
  let owner: string;
  try {
    const userns = namespaceOwner(nsFd, nsPath);
    try {
      owner = readlinkAt(AT_FDCWD, `/proc/self/fd/${userns}`);
    } finally {
      close(userns);
    }
  } catch (error) {
    // EPERM: owned outside the caller's user namespace; the caller's ids then.
    if (error instanceof MountError && error.code === "EPERM") return undefined;
    throw error;
  }
  if (owner === readlinkAt(AT_FDCWD, "/proc/self/ns/user")) return undefined;
  if (owner !== readlinkAt(AT_FDCWD, `/proc/${pid}/ns/user`)) return undefined;
  const uid = outsideOf(parseIDMap(readText(`/proc/${pid}/uid_map`), "uid_map"), 0);
  const gid = outsideOf(parseIDMap(readText(`/proc/${pid}/gid_map`), "gid_map"), 0);
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}
