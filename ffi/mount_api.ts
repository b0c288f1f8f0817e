/**
 * Typed wrappers of the new mount API (open_tree, move_mount,
 * mount_setattr) and of the calls that describe a mount or a file through
 * its fd (statx, fstatfs), checked as `syscalls.ts`'s are.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_SIZE_VER0,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  STATX_MNT_ID,
  STATX_MODE,
  STATX_TYPE,
} from "./constants.ts";
import { check, cString, LOW, type PathNames, tempCString } from "./call.ts";
import { errnoView, libc } from "./libc.ts";

// struct statfs is 120 bytes on x86_64 and aarch64: f_type is its 1st word,
// f_flags its 11th.
const statfsWords = new BigUint64Array(16);
const statfsBytes = new Uint8Array(statfsWords.buffer);

/** fstatfs(2) into `statfsWords`. */
function fstatfs(fd: number, names: PathNames): BigUint64Array {
  check(
    libc("fstatfs").fstatfs(fd, statfsBytes),
    errnoView[0],
    "fstatfs",
    names.source,
    names.target,
  );
  return statfsWords;
}

/**
 * fstatfs(2): the `f_flags` of the mount an fd is on (`ST_*` bits).
 *
 * @param fd Any fd, an `O_PATH` one or a detached mount included.
 * @param names The paths to name in an error.
 * @returns The `ST_*` flags of the mount.
 * @throws {MountError} With op `"fstatfs"`.
 */
export function fstatfsFlags(fd: number, names: PathNames = {}): number {
  return Number(fstatfs(fd, names)[10]);
}

/**
 * fstatfs(2): the `f_type` of the filesystem an fd is on, its magic number.
 *
 * @param fd Any fd, an `O_PATH` one or a detached mount included.
 * @param names The paths to name in an error.
 * @returns The magic number, such as `PROC_SUPER_MAGIC`.
 * @throws {MountError} With op `"fstatfs"`.
 */
export function fstatfsType(fd: number, names: PathNames = {}): number {
  return Number(fstatfs(fd, names)[0]);
}

// struct statx is 256 bytes, the same on every architecture: stx_mask is the
// u32 at byte 0, stx_mode the u16 at 28, stx_mnt_id the u64 at 144.
const statxWords = new Uint32Array(64);
const statxShorts = new Uint16Array(statxWords.buffer);
const statxBytes = new Uint8Array(statxWords.buffer);
const STATX_WANTED = STATX_TYPE | STATX_MODE | STATX_MNT_ID;

/** What {@linkcode fileInfo} reports of a file. */
export interface FileInfo {
  /** The type and permission bits (`S_IFMT` and below). */
  mode: number;
  /** The id of the mount the file is on, as in mountinfo; -1 before Linux 5.8. */
  mountId: number;
}

/**
 * statx(2): the type, mode and mount id of a file, without following a
 * symbolic link at the end of the path when `flags` says so.
 *
 * @param fd A directory fd, or the file's own fd (an `O_PATH` one will do)
 * with an empty `path` and `AT_EMPTY_PATH`.
 * @param path The file, relative to `fd` (default: `fd` itself).
 * @param flags `AT_*` flags, such as `AT_SYMLINK_NOFOLLOW` (default
 * `AT_EMPTY_PATH`).
 * @returns The file's mode and mount id.
 * @throws {MountError} With op `"statx"`.
 */
export function fileInfo(fd: number, path: string = "", flags: number = AT_EMPTY_PATH): FileInfo {
  const cpath = tempCString(path, "path");
  check(
    libc("statx").statx(fd, cpath, flags, STATX_WANTED, statxBytes),
    errnoView[0],
    "statx",
    path || undefined,
  );
  const mode = statxShorts[14];
  const mountId = statxWords[0] & STATX_MNT_ID
    ? statxWords[36 + LOW] + statxWords[37 - LOW] * 2 ** 32
    : -1;
  return { mode, mountId };
}

/**
 * open_tree(2), always with `OPEN_TREE_CLOEXEC`.
 *
 * @param dirfd The directory fd `path` is relative to, or `AT_FDCWD`.
 * @param path The path of the tree.
 * @param flags `OPEN_TREE_*` and `AT_*` flags; `OPEN_TREE_CLOEXEC` is added.
 * @returns The new fd: a detached mount with `OPEN_TREE_CLONE`.
 * @throws {MountError} With op `"open_tree(OPEN_TREE_CLONE)"` (or
 * `"open_tree"`) if the call fails.
 */
export function openTree(dirfd: number, path: string, flags: number): number {
  const op = flags & OPEN_TREE_CLONE ? "open_tree(OPEN_TREE_CLONE)" : "open_tree";
  const cpath = tempCString(path, "path");
  return check(
    libc("open_tree").open_tree(dirfd, cpath, flags | OPEN_TREE_CLOEXEC),
    errnoView[0],
    op,
    path,
  );
}

/**
 * move_mount(2).
 *
 * @param fromDirfd The source dirfd (the mount fd with an empty path).
 * @param fromPath The source path.
 * @param toDirfd The target dirfd, or `AT_FDCWD`.
 * @param toPath The target path.
 * @param flags `MOVE_MOUNT_*` flags.
 * @param names The paths to name in an error.
 * @throws {MountError} With op `"move_mount"` if the call fails.
 */
export function moveMount(
  fromDirfd: number,
  fromPath: string,
  toDirfd: number,
  toPath: string,
  flags: number,
  names: PathNames = {},
): void {
  const cfrom = cString(fromPath, "source path");
  const cto = cString(toPath, "target path");
  check(
    libc("move_mount").move_mount(fromDirfd, cfrom, toDirfd, cto, flags),
    errnoView[0],
    "move_mount",
    names.source ?? (fromPath || undefined),
    names.target ?? toPath,
  );
}

/** The fields of `struct mount_attr`. */
export interface MountAttrStruct {
  /** `MOUNT_ATTR_*` bits to set. */
  attrSet: number;
  /** `MOUNT_ATTR_*` bits to clear. */
  attrClr?: number;
  /** One `MS_*` propagation type, or 0. */
  propagation?: number;
  /** The user namespace fd for `MOUNT_ATTR_IDMAP`. */
  usernsFd?: number;
}

// One struct, reused: a call fills it and the kernel copies it at once. Its
// four fields are u64s holding u32 values: only their low halves are written,
// through a u32 view, so that filling it makes no BigInts.
const attrHalves = new Uint32Array(MOUNT_ATTR_SIZE_VER0 / 4);
const attrBytes = new Uint8Array(attrHalves.buffer);
const ATTR_SIZE = BigInt(MOUNT_ATTR_SIZE_VER0);

/**
 * mount_setattr(2).
 *
 * @param dirfd The mount fd (with an empty path and `AT_EMPTY_PATH`).
 * @param path The path, relative to `dirfd`.
 * @param flags `AT_*` flags, such as `AT_EMPTY_PATH | AT_RECURSIVE`.
 * @param attr The attributes to set and clear.
 * @param names The op and paths to name in an error.
 * @throws {MountError} With op `"mount_setattr"` (`"mount_setattr(MOUNT_ATTR_IDMAP)"`
 * for an id mapping, or `names.op`) if the call fails.
 */
export function mountSetattr(
  dirfd: number,
  path: string,
  flags: number,
  attr: MountAttrStruct,
  names: PathNames = {},
): void {
  const op = names.op ??
    (attr.attrSet & MOUNT_ATTR_IDMAP ? "mount_setattr(MOUNT_ATTR_IDMAP)" : "mount_setattr");
  const cpath = tempCString(path, "path");
  attrHalves[LOW] = attr.attrSet;
  attrHalves[2 + LOW] = attr.attrClr ?? 0;
  attrHalves[4 + LOW] = attr.propagation ?? 0;
  attrHalves[6 + LOW] = attr.usernsFd ?? 0;
  check(
    libc("mount_setattr").mount_setattr(dirfd, cpath, flags, attrBytes, ATTR_SIZE),
    errnoView[0],
    op,
    names.source ?? (path || undefined),
    names.target,
  );
}
