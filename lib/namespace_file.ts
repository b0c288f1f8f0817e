/**
 * Namespace files: `/proc/PID/ns/*`, or a bind mount of one.
 *
 * @module
 */

import { CLONE_NEWNS, CLONE_NEWUSER, O_RDONLY } from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { namespaceType, open } from "../ffi/syscalls.ts";
import { OwnedFd } from "./fd.ts";

const KINDS = {
  user: { type: CLONE_NEWUSER, op: "open userns", noun: "user namespace" },
  mnt: { type: CLONE_NEWNS, op: "open mntns", noun: "mount namespace" },
} as const;

/**
 * Opens a namespace file, close-on-exec, and checks its kind with the
 * `NS_GET_NSTYPE` ioctl before anything uses it.
 *
 * @param path The file, such as `/proc/1234/ns/user`.
 * @param kind The kind of namespace it must be.
 * @returns The fd, which the caller closes.
 * @throws {MountError} With op `"open"` if it can't be opened; with op
 * `"open userns"` or `"open mntns"` if it is no namespace file, or one of
 * another kind.
 *
 * @example Open the user namespace of this process
 * ```ts
 * import { openNamespaceFile } from "./namespace_file.ts";
 * using userns = openNamespaceFile("/proc/self/ns/user", "user");
 * ```
 */
export function openNamespaceFile(path: string, kind: keyof typeof KINDS): OwnedFd {
  const { type: expected, op, noun } = KINDS[kind];
  const fd = new OwnedFd(open(path, O_RDONLY));
  let type: number;
  try {
    type = namespaceType(fd.fd, path);
  } catch (error) {
    fd.close();
    if (error instanceof MountError && error.code === "ENOTTY") {
      throw new MountError(op, {
        source: path,
        detail: `not a namespace file (expected /proc/PID/ns/${kind} or a bind mount of one)`,
        cause: error,
      });
    }
    throw error;
  }
  if (type !== expected) {
    fd.close();
    throw new MountError(op, {
      source: path,
      detail: `not a ${noun} (namespace type 0x${type.toString(16)})`,
    });
  }
  return fd;
}
