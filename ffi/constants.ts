/**
 * Kernel constants for mount(2), the new mount API, open(2) and fcntl(2).
 *
 * The values are the Linux ABI for x86_64 and aarch64. Where the two differ
 * (`O_DIRECTORY`, `O_NOFOLLOW`, `O_LARGEFILE`), the value is the one of the
 * architecture Deno runs on; on another architecture, the first syscall
 * throws. They are plain numbers, so they combine with `|` like their C
 * counterparts.
 *
 * @module
 */

const AARCH64 = Deno.build.arch === "aarch64";

// mount(2) flags (MS_*), from <linux/mount.h>.

/** Mount read-only. */
export const MS_RDONLY = 0x1;
/** Ignore set-user-ID and set-group-ID bits. */
export const MS_NOSUID = 0x2;
/** Disallow access to device special files. */
export const MS_NODEV = 0x4;
/** Disallow program execution. */
export const MS_NOEXEC = 0x8;
/** Writes are synced at once. */
export const MS_SYNCHRONOUS = 0x10;
/** Alter the flags of a mounted filesystem. */
export const MS_REMOUNT = 0x20;
/** Allow mandatory locks (removed from current kernels). */
export const MS_MANDLOCK = 0x40;
/** Directory modifications are synchronous. */
export const MS_DIRSYNC = 0x80;
/** Do not follow symbolic links when resolving paths. */
export const MS_NOSYMFOLLOW = 0x100;
/** Do not update access times. */
export const MS_NOATIME = 0x400;
/** Do not update directory access times. */
export const MS_NODIRATIME = 0x800;
/** Create a bind mount. */
export const MS_BIND = 0x1000;
/** Move a subtree. */
export const MS_MOVE = 0x2000;
/** Apply recursively (with `MS_BIND`: a recursive bind, "rbind"). */
export const MS_REC = 0x4000;
/** Suppress some kernel warnings. */
export const MS_SILENT = 0x8000;
/** The filesystem supports POSIX ACLs (set by the kernel). */
export const MS_POSIXACL = 0x10000;
/** Propagation: unbindable. */
export const MS_UNBINDABLE = 0x20000;
/** Propagation: private. */
export const MS_PRIVATE = 0x40000;
/** Propagation: slave. */
export const MS_SLAVE = 0x80000;
/** Propagation: shared. */
export const MS_SHARED = 0x100000;
/** Update access times relative to modify or change time. */
export const MS_RELATIME = 0x200000;
/** Update the i_version field on every change. */
export const MS_I_VERSION = 0x800000;
/** Always update access times. */
export const MS_STRICTATIME = 0x1000000;
/** Keep timestamp updates in memory. */
export const MS_LAZYTIME = 0x2000000;

// umount2(2) flags.

/** Force an unmount. */
export const MNT_FORCE = 0x1;
/** Lazy unmount: detach now, clean up when no longer busy. */
export const MNT_DETACH = 0x2;
/** Mark the mount as expired. */
export const MNT_EXPIRE = 0x4;
/** Do not follow a symbolic link at the target. */
export const UMOUNT_NOFOLLOW = 0x8;

// mount_setattr(2) attributes (MOUNT_ATTR_*).

/** Mount read-only. */
export const MOUNT_ATTR_RDONLY = 0x1;
/** Ignore set-user-ID and set-group-ID bits. */
export const MOUNT_ATTR_NOSUID = 0x2;
/** Disallow access to device special files. */
export const MOUNT_ATTR_NODEV = 0x4;
/** Disallow program execution. */
export const MOUNT_ATTR_NOEXEC = 0x8;
/** The mask of the access-time setting, cleared before one is set. */
export const MOUNT_ATTR__ATIME = 0x70;
/** Update access times relative to modify or change time (the default). */
export const MOUNT_ATTR_RELATIME = 0x0;
/** Do not update access times. */
export const MOUNT_ATTR_NOATIME = 0x10;
/** Always update access times. */
export const MOUNT_ATTR_STRICTATIME = 0x20;
/** Do not update directory access times. */
export const MOUNT_ATTR_NODIRATIME = 0x80;
/** Make an id-mapped mount with the user namespace in `userns_fd`. */
export const MOUNT_ATTR_IDMAP = 0x100000;
/** Do not follow symbolic links. */
export const MOUNT_ATTR_NOSYMFOLLOW = 0x200000;
/** The size of the first version of `struct mount_attr`. */
export const MOUNT_ATTR_SIZE_VER0 = 32;

// open_tree(2) flags.

/** Clone the tree into a new, detached mount. */
export const OPEN_TREE_CLONE = 0x1;
/** Set close-on-exec on the new fd (equal to `O_CLOEXEC`). */
export const OPEN_TREE_CLOEXEC = 0o2000000;

// openat2(2) resolve flags (RESOLVE_*), from <linux/openat2.h>.

/** Do not cross a mount point. */
export const RESOLVE_NO_XDEV = 0x01;
/** Do not follow magic links (`/proc/PID/fd/*`, `/proc/PID/root`, ...). */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** Do not follow any symbolic link (magic links included). */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** Fail if the path leads outside the dirfd (`..` or an absolute symlink). */
export const RESOLVE_BENEATH = 0x08;
/** Resolve as if the dirfd were `/`: `..` and absolute symlinks stay inside it. */
export const RESOLVE_IN_ROOT = 0x10;
/** Resolve from the dcache only, or fail with EAGAIN. */
export const RESOLVE_CACHED = 0x20;

// *at(2) flags.

/** The current working directory, as a dirfd. */
export const AT_FDCWD: number = -100;
/** Do not follow a symbolic link at the end of the path. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** Do not trigger an automount at the end of the path. */
export const AT_NO_AUTOMOUNT = 0x800;
/** Operate on the dirfd itself when the path is empty. */
export const AT_EMPTY_PATH = 0x1000;
/** Apply to the whole subtree. */
export const AT_RECURSIVE = 0x8000;

// statx(2) mask bits (STATX_*), from <linux/stat.h>.

/** Want the file type (`stx_mode & S_IFMT`). */
export const STATX_TYPE = 0x1;
/** Want the permission bits (`stx_mode & ~S_IFMT`). */
export const STATX_MODE = 0x2;
/** Want the inode number. */
export const STATX_INO = 0x100;
/** Want the mount id (Linux 5.8). */
export const STATX_MNT_ID = 0x1000;

// File types (S_IF*), in a mode.

/** The mask of the file type bits. */
export const S_IFMT = 0o170000;
/** A directory. */
export const S_IFDIR = 0o040000;
/** A regular file. */
export const S_IFREG = 0o100000;
/** A symbolic link. */
export const S_IFLNK = 0o120000;
/** A FIFO. */
export const S_IFIFO = 0o010000;
/** A character device. */
export const S_IFCHR = 0o020000;
/** A block device. */
export const S_IFBLK = 0o060000;
/** A socket. */
export const S_IFSOCK = 0o140000;

// move_mount(2) flags.

/** Follow symbolic links on the source path. */
export const MOVE_MOUNT_F_SYMLINKS = 0x1;
/** Follow automounts on the source path. */
export const MOVE_MOUNT_F_AUTOMOUNTS = 0x2;
/** The source is the dirfd itself (empty path). */
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
/** Follow symbolic links on the target path. */
export const MOVE_MOUNT_T_SYMLINKS = 0x10;
/** Follow automounts on the target path. */
export const MOVE_MOUNT_T_AUTOMOUNTS = 0x20;
/** The target is the dirfd itself (empty path). */
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;
/** Join the peer group of the source (Linux 5.15). */
export const MOVE_MOUNT_SET_GROUP = 0x100;
/** Mount beneath the top mount of the target (Linux 6.5). */
export const MOVE_MOUNT_BENEATH = 0x200;

// open(2) and fcntl(2).

/** Open for reading only. */
export const O_RDONLY = 0x0;
/** Open for writing only. */
export const O_WRONLY = 0x1;
/** Open for reading and writing. */
export const O_RDWR = 0x2;
/** Create the file if it does not exist (with a mode). */
export const O_CREAT = 0o100;
/** With `O_CREAT`: fail if the file exists. */
export const O_EXCL = 0o200;
/** Do not make a terminal the controlling terminal. */
export const O_NOCTTY = 0o400;
/** Do not block: on opening a FIFO, nor on I/O. */
export const O_NONBLOCK = 0o4000;
/** Open a path without opening the file itself. */
export const O_PATH = 0o10000000;
/** Fail unless the path is a directory (0o200000 on x86_64, 0o40000 on aarch64). */
export const O_DIRECTORY: number = AARCH64 ? 0o40000 : 0o200000;
/** Fail with ELOOP if the last component is a symbolic link (0o400000 on x86_64, 0o100000 on aarch64). */
export const O_NOFOLLOW: number = AARCH64 ? 0o100000 : 0o400000;
/**
 * Large-file access, which the kernel sets on every open of a 64-bit process
 * (0o100000 on x86_64, 0o400000 on aarch64; seen in `F_GETFL` and fdinfo).
 */
export const O_LARGEFILE: number = AARCH64 ? 0o400000 : 0o100000;
/** Close the fd on execve(2). */
export const O_CLOEXEC = 0o2000000;
/** Duplicate an fd, with close-on-exec set on the copy. */
export const F_DUPFD_CLOEXEC = 1030;
/** Read the fd flags. */
export const F_GETFD = 1;
/** The close-on-exec bit in the fd flags. */
export const FD_CLOEXEC = 1;

// statfs(2) f_flags (ST_*), from <linux/statfs.h>: a mount's flags.

/** Mounted read-only. */
export const ST_RDONLY = 0x1;
/** Set-user-ID and set-group-ID bits are ignored. */
export const ST_NOSUID = 0x2;
/** Device special files are not accessible. */
export const ST_NODEV = 0x4;
/** Program execution is disallowed. */
export const ST_NOEXEC = 0x8;
/** Writes are synced at once. */
export const ST_SYNCHRONOUS = 0x10;
/** Mandatory locks are allowed. */
export const ST_MANDLOCK = 0x40;
/** Access times are not updated. */
export const ST_NOATIME = 0x400;
/** Directory access times are not updated. */
export const ST_NODIRATIME = 0x800;
/** Access times are updated relative to modify or change time. */
export const ST_RELATIME = 0x1000;
/** Symbolic links are not followed. */
export const ST_NOSYMFOLLOW = 0x2000;

// statfs(2) f_type: filesystem magic numbers, from <linux/magic.h>.

/** The filesystem of `/proc`. */
export const PROC_SUPER_MAGIC = 0x9fa0;
/** The filesystem of namespace files (`/proc/PID/ns/*`). */
export const NSFS_MAGIC = 0x6e736673;

// Namespaces.

/** unshare(2): stop sharing the root, cwd and umask with the other threads. */
export const CLONE_FS = 0x200;

/** The `CLONE_NEWUSER` namespace type, as `NS_GET_NSTYPE` reports it. */
export const CLONE_NEWUSER = 0x10000000;
/** The `CLONE_NEWNS` (mount) namespace type. */
export const CLONE_NEWNS = 0x20000;
/** The `CLONE_NEWPID` namespace type. */
export const CLONE_NEWPID = 0x20000000;
/** The `CLONE_NEWNET` (network) namespace type. */
export const CLONE_NEWNET = 0x40000000;
/** The `CLONE_NEWIPC` namespace type. */
export const CLONE_NEWIPC = 0x8000000;
/** The `CLONE_NEWUTS` namespace type. */
export const CLONE_NEWUTS = 0x4000000;
/** The `CLONE_NEWCGROUP` namespace type. */
export const CLONE_NEWCGROUP = 0x2000000;
/** The `CLONE_NEWTIME` namespace type (Linux 5.6). */
export const CLONE_NEWTIME = 0x80;
/** ioctl(2) request on an nsfs fd that returns its namespace type. */
export const NS_GET_NSTYPE = 0xb703;
/** `NS_GET_USERNS`: an fd of the user namespace that owns a namespace. */
export const NS_GET_USERNS = 0xb701;

// Unix sockets (ffi/socket.ts): the same values on x86_64 and aarch64.
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
/** `SOCK_NONBLOCK`, also `O_NONBLOCK`: the same value on x86_64 and aarch64. */
export const SOCK_NONBLOCK = 0o4000;
/** `SOCK_CLOEXEC`, also `O_CLOEXEC`. */
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const SO_PEERCRED = 17;
/** Linux 6.5. */
export const SO_PEERPIDFD = 77;
export const MSG_CTRUNC = 0x8;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const EAGAIN = 11;
export const EINTR = 4;
export const ENOPROTOOPT = 92;

// Signals.
/** `SIGKILL`: ends a process, stopped or not. */
export const SIGKILL = 9;
