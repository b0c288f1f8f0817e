/**
 * Namespace files: `/proc/PID/ns/*`, or a bind mount of one.
 *
 * @module
 */

import {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWTIME,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
} from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { namespaceType, open } from "../ffi/syscalls.ts";
import { OwnedFd } from "./fd.ts";

const KINDS = {
  user: { type: CLONE_NEWUSER, op: "open userns" },
  mnt: { type: CLONE_NEWNS, op: "open mntns" },
} as const;

/** The name of each namespace type, as `NS_GET_NSTYPE` reports it. */
const TYPE_NAMES = new Map<number, string>([
  [CLONE_NEWNS, "mount"],
  [CLONE_NEWUSER, "user"],
  [CLONE_NEWPID, "pid"],
  [CLONE_NEWNET, "network"],
  [CLONE_NEWIPC, "ipc"],
  [CLONE_NEWUTS, "uts"],
  [CLONE_NEWCGROUP, "cgroup"],
  [CLONE_NEWTIME, "time"],
]);

function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16)}`;
}

/**
 * Opens a namespace file, close-on-exec, and checks its kind with the
 * `NS_GET_NSTYPE` ioctl before anything uses it. The open cannot block: a
 * FIFO (which would wait for a writer) is opened with `O_NONBLOCK`, then
 * refused as no namespace file.
 *
 * @param path The file, such as `/proc/1234/ns/user`.
 * @param kind The kind of namespace it must be.
 * @returns The fd, which the caller closes.
 * @throws {MountError} With op `"open"` if it can't be opened (EACCES with a
 * hint: another process's namespace needs ptrace access to it); with op
 * `"open userns"` or `"open mntns"` if it is no namespace file, or one of
 * another type, named (`"mount"`, `"user"`, ...).
 *
 * @example Open the user namespace of this process
 * ```ts
 * import { openNamespaceFile } from "./namespace_file.ts";
 * using userns = openNamespaceFile("/proc/self/ns/user", "user");
 * ```
 */
export function openNamespaceFile(path: string, kind: keyof typeof KINDS): OwnedFd {
  const { type: expected, op } = KINDS[kind];
  // A user namespace file is named as such, not as a mount's source.
  const names = kind === "user" ? { userns: path } : { source: path };
  let fd: OwnedFd;
  try {
    fd = new OwnedFd(open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  } catch (error) {
    if (!(error instanceof MountError)) throw error;
    throw new MountError(error.op, {
      errno: error.errno,
      ...names,
      hint: error.code === "EACCES"
        ? "(a namespace of another process needs ptrace access to it)"
        : undefined,
      cause: error,
    });
  }
  let type: number;
  try {
    type = namespaceType(fd.fd, path);
  } catch (error) {
    fd.close();
    if (error instanceof MountError && error.code === "ENOTTY") {
      throw new MountError(op, {
        ...names,
        detail: `not a namespace file (expected /proc/PID/ns/${kind} or a bind mount of one)`,
        cause: error,
      });
    }
    throw error;
  }
  if (type !== expected) {
    fd.close();
    throw new MountError(op, {
      ...names,
      detail: `not a ${typeName(expected)} namespace (namespace type: ${typeName(type)})`,
    });
  }
  return fd;
}
