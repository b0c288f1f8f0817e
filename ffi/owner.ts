/**
 * Who owns a file, from its fd: statx(2) with the owner, the inode and the
 * mount, for the mount broker's checks.
 *
 * @module
 */

import { AT_EMPTY_PATH, STATX_INO, STATX_MNT_ID, STATX_MODE, STATX_TYPE } from "./constants.ts";
import { errnoView, libc } from "./libc.ts";
import { MountError } from "./mount_error.ts";

const STATX_UID = 0x8;
const STATX_GID = 0x10;
const STATX_ATTR_MOUNT_ROOT = 0x2000;
const WANTED = STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_MNT_ID;
const LITTLE = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const EMPTY = new Uint8Array(1);
const DOTDOT = new TextEncoder().encode("..\0");

/** What {@linkcode statOwner} reports of a file. */
export interface Owner {
  /** The owner, in this process's user namespace. */
  uid: number;
  /** The group. */
  gid: number;
  /** The type and permission bits. */
  mode: number;
  /** The device, as `major:minor`. */
  dev: string;
  /** The inode. */
  ino: bigint;
  /** The id of its mount. */
  mountId: bigint;
  /** Whether it is the root of its mount (`STATX_ATTR_MOUNT_ROOT`). */
  mountRoot: boolean;
}

/**
 * statx(2) of an fd itself (`AT_EMPTY_PATH`), or of its parent (`".."`).
 *
 * @param fd Any fd, `O_PATH` included.
 * @param parent Whether to stat `..` of it, a directory.
 * @returns The owner, mode, inode and mount.
 * @throws {MountError} With op `"statx"`.
 */
export function statOwner(fd: number, parent: boolean = false): Owner {
  const bytes = new Uint8Array(256);
  const path = parent ? DOTDOT : EMPTY;
  const flags = parent ? 0 : AT_EMPTY_PATH;
  if (libc("statx").statx(fd, path, flags, WANTED, bytes) < 0) {
    throw new MountError("statx", { errno: errnoView[0], source: parent ? ".." : undefined });
  }
  const view = new DataView(bytes.buffer);
  return {
    uid: view.getUint32(20, LITTLE),
    gid: view.getUint32(24, LITTLE),
    mode: view.getUint16(28, LITTLE),
    ino: view.getBigUint64(32, LITTLE),
    dev: `${view.getUint32(136, LITTLE)}:${view.getUint32(140, LITTLE)}`,
    mountId: view.getBigUint64(144, LITTLE),
    mountRoot: (view.getBigUint64(8, LITTLE) & BigInt(STATX_ATTR_MOUNT_ROOT)) !== 0n,
  };
}
