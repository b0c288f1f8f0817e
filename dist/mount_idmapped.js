var __defProp = Object.defineProperty;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __esm = (fn, res) => function __init() {
  return fn && (res = (0, fn[__getOwnPropNames(fn)[0]])(fn = 0)), res;
};
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};

// ffi/constants.ts
var AARCH64, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC, MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC, MS_SILENT, MS_POSIXACL, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_RELATIME, MS_I_VERSION, MS_STRICTATIME, MS_LAZYTIME, MNT_DETACH, UMOUNT_NOFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR__ATIME, MOUNT_ATTR_RELATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_SIZE_VER0, OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT, AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE, STATX_TYPE, STATX_MODE, STATX_MNT_ID, S_IFMT, S_IFDIR, S_IFLNK, MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOCTTY, O_NONBLOCK, O_PATH, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, F_DUPFD_CLOEXEC, ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC, ST_SYNCHRONOUS, ST_MANDLOCK, ST_NOATIME, ST_NODIRATIME, ST_RELATIME, ST_NOSYMFOLLOW, PROC_SUPER_MAGIC, CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME, NS_GET_NSTYPE;
var init_constants = __esm({
  "ffi/constants.ts"() {
    AARCH64 = Deno.build.arch === "aarch64";
    MS_RDONLY = 1;
    MS_NOSUID = 2;
    MS_NODEV = 4;
    MS_NOEXEC = 8;
    MS_SYNCHRONOUS = 16;
    MS_REMOUNT = 32;
    MS_MANDLOCK = 64;
    MS_DIRSYNC = 128;
    MS_NOSYMFOLLOW = 256;
    MS_NOATIME = 1024;
    MS_NODIRATIME = 2048;
    MS_BIND = 4096;
    MS_MOVE = 8192;
    MS_REC = 16384;
    MS_SILENT = 32768;
    MS_POSIXACL = 65536;
    MS_UNBINDABLE = 131072;
    MS_PRIVATE = 262144;
    MS_SLAVE = 524288;
    MS_SHARED = 1048576;
    MS_RELATIME = 2097152;
    MS_I_VERSION = 8388608;
    MS_STRICTATIME = 16777216;
    MS_LAZYTIME = 33554432;
    MNT_DETACH = 2;
    UMOUNT_NOFOLLOW = 8;
    MOUNT_ATTR_RDONLY = 1;
    MOUNT_ATTR_NOSUID = 2;
    MOUNT_ATTR_NODEV = 4;
    MOUNT_ATTR_NOEXEC = 8;
    MOUNT_ATTR__ATIME = 112;
    MOUNT_ATTR_RELATIME = 0;
    MOUNT_ATTR_NOATIME = 16;
    MOUNT_ATTR_STRICTATIME = 32;
    MOUNT_ATTR_NODIRATIME = 128;
    MOUNT_ATTR_IDMAP = 1048576;
    MOUNT_ATTR_NOSYMFOLLOW = 2097152;
    MOUNT_ATTR_SIZE_VER0 = 32;
    OPEN_TREE_CLONE = 1;
    OPEN_TREE_CLOEXEC = 524288;
    RESOLVE_NO_MAGICLINKS = 2;
    RESOLVE_IN_ROOT = 16;
    AT_FDCWD = -100;
    AT_EMPTY_PATH = 4096;
    AT_RECURSIVE = 32768;
    STATX_TYPE = 1;
    STATX_MODE = 2;
    STATX_MNT_ID = 4096;
    S_IFMT = 61440;
    S_IFDIR = 16384;
    S_IFLNK = 40960;
    MOVE_MOUNT_F_EMPTY_PATH = 4;
    MOVE_MOUNT_T_EMPTY_PATH = 64;
    O_RDONLY = 0;
    O_WRONLY = 1;
    O_CREAT = 64;
    O_EXCL = 128;
    O_NOCTTY = 256;
    O_NONBLOCK = 2048;
    O_PATH = 2097152;
    O_DIRECTORY = AARCH64 ? 16384 : 65536;
    O_NOFOLLOW = AARCH64 ? 32768 : 131072;
    O_CLOEXEC = 524288;
    F_DUPFD_CLOEXEC = 1030;
    ST_RDONLY = 1;
    ST_NOSUID = 2;
    ST_NODEV = 4;
    ST_NOEXEC = 8;
    ST_SYNCHRONOUS = 16;
    ST_MANDLOCK = 64;
    ST_NOATIME = 1024;
    ST_NODIRATIME = 2048;
    ST_RELATIME = 4096;
    ST_NOSYMFOLLOW = 8192;
    PROC_SUPER_MAGIC = 40864;
    CLONE_NEWUSER = 268435456;
    CLONE_NEWNS = 131072;
    CLONE_NEWPID = 536870912;
    CLONE_NEWNET = 1073741824;
    CLONE_NEWIPC = 134217728;
    CLONE_NEWUTS = 67108864;
    CLONE_NEWCGROUP = 33554432;
    CLONE_NEWTIME = 128;
    NS_GET_NSTYPE = 46851;
  }
});

// ffi/errno.ts
function errnoName(errno) {
  return NAMES.get(errno) ?? `errno ${errno}`;
}
function errnoDescription(errno) {
  return DESCRIPTIONS.get(errno) ?? `Unknown error ${errno}`;
}
function errnoValue(name) {
  for (const [errno, known] of NAMES) if (known === name) return errno;
  return void 0;
}
var TABLE, NAMES, DESCRIPTIONS;
var init_errno = __esm({
  "ffi/errno.ts"() {
    TABLE = [
      [
        1,
        "EPERM",
        "Operation not permitted"
      ],
      [
        2,
        "ENOENT",
        "No such file or directory"
      ],
      [
        3,
        "ESRCH",
        "No such process"
      ],
      [
        4,
        "EINTR",
        "Interrupted system call"
      ],
      [
        5,
        "EIO",
        "Input/output error"
      ],
      [
        6,
        "ENXIO",
        "No such device or address"
      ],
      [
        7,
        "E2BIG",
        "Argument list too long"
      ],
      [
        8,
        "ENOEXEC",
        "Exec format error"
      ],
      [
        9,
        "EBADF",
        "Bad file descriptor"
      ],
      [
        10,
        "ECHILD",
        "No child processes"
      ],
      [
        11,
        "EAGAIN",
        "Resource temporarily unavailable"
      ],
      [
        12,
        "ENOMEM",
        "Cannot allocate memory"
      ],
      [
        13,
        "EACCES",
        "Permission denied"
      ],
      [
        14,
        "EFAULT",
        "Bad address"
      ],
      [
        15,
        "ENOTBLK",
        "Block device required"
      ],
      [
        16,
        "EBUSY",
        "Device or resource busy"
      ],
      [
        17,
        "EEXIST",
        "File exists"
      ],
      [
        18,
        "EXDEV",
        "Invalid cross-device link"
      ],
      [
        19,
        "ENODEV",
        "No such device"
      ],
      [
        20,
        "ENOTDIR",
        "Not a directory"
      ],
      [
        21,
        "EISDIR",
        "Is a directory"
      ],
      [
        22,
        "EINVAL",
        "Invalid argument"
      ],
      [
        23,
        "ENFILE",
        "Too many open files in system"
      ],
      [
        24,
        "EMFILE",
        "Too many open files"
      ],
      [
        25,
        "ENOTTY",
        "Inappropriate ioctl for device"
      ],
      [
        26,
        "ETXTBSY",
        "Text file busy"
      ],
      [
        27,
        "EFBIG",
        "File too large"
      ],
      [
        28,
        "ENOSPC",
        "No space left on device"
      ],
      [
        29,
        "ESPIPE",
        "Illegal seek"
      ],
      [
        30,
        "EROFS",
        "Read-only file system"
      ],
      [
        31,
        "EMLINK",
        "Too many links"
      ],
      [
        32,
        "EPIPE",
        "Broken pipe"
      ],
      [
        33,
        "EDOM",
        "Numerical argument out of domain"
      ],
      [
        34,
        "ERANGE",
        "Numerical result out of range"
      ],
      [
        35,
        "EDEADLK",
        "Resource deadlock avoided"
      ],
      [
        36,
        "ENAMETOOLONG",
        "File name too long"
      ],
      [
        37,
        "ENOLCK",
        "No locks available"
      ],
      [
        38,
        "ENOSYS",
        "Function not implemented"
      ],
      [
        39,
        "ENOTEMPTY",
        "Directory not empty"
      ],
      [
        40,
        "ELOOP",
        "Too many levels of symbolic links"
      ],
      [
        42,
        "ENOMSG",
        "No message of desired type"
      ],
      [
        43,
        "EIDRM",
        "Identifier removed"
      ],
      [
        44,
        "ECHRNG",
        "Channel number out of range"
      ],
      [
        45,
        "EL2NSYNC",
        "Level 2 not synchronized"
      ],
      [
        46,
        "EL3HLT",
        "Level 3 halted"
      ],
      [
        47,
        "EL3RST",
        "Level 3 reset"
      ],
      [
        48,
        "ELNRNG",
        "Link number out of range"
      ],
      [
        49,
        "EUNATCH",
        "Protocol driver not attached"
      ],
      [
        50,
        "ENOCSI",
        "No CSI structure available"
      ],
      [
        51,
        "EL2HLT",
        "Level 2 halted"
      ],
      [
        52,
        "EBADE",
        "Invalid exchange"
      ],
      [
        53,
        "EBADR",
        "Invalid request descriptor"
      ],
      [
        54,
        "EXFULL",
        "Exchange full"
      ],
      [
        55,
        "ENOANO",
        "No anode"
      ],
      [
        56,
        "EBADRQC",
        "Invalid request code"
      ],
      [
        57,
        "EBADSLT",
        "Invalid slot"
      ],
      [
        59,
        "EBFONT",
        "Bad font file format"
      ],
      [
        60,
        "ENOSTR",
        "Device not a stream"
      ],
      [
        61,
        "ENODATA",
        "No data available"
      ],
      [
        62,
        "ETIME",
        "Timer expired"
      ],
      [
        63,
        "ENOSR",
        "Out of streams resources"
      ],
      [
        64,
        "ENONET",
        "Machine is not on the network"
      ],
      [
        65,
        "ENOPKG",
        "Package not installed"
      ],
      [
        66,
        "EREMOTE",
        "Object is remote"
      ],
      [
        67,
        "ENOLINK",
        "Link has been severed"
      ],
      [
        68,
        "EADV",
        "Advertise error"
      ],
      [
        69,
        "ESRMNT",
        "Srmount error"
      ],
      [
        70,
        "ECOMM",
        "Communication error on send"
      ],
      [
        71,
        "EPROTO",
        "Protocol error"
      ],
      [
        72,
        "EMULTIHOP",
        "Multihop attempted"
      ],
      [
        73,
        "EDOTDOT",
        "RFS specific error"
      ],
      [
        74,
        "EBADMSG",
        "Bad message"
      ],
      [
        75,
        "EOVERFLOW",
        "Value too large for defined data type"
      ],
      [
        76,
        "ENOTUNIQ",
        "Name not unique on network"
      ],
      [
        77,
        "EBADFD",
        "File descriptor in bad state"
      ],
      [
        78,
        "EREMCHG",
        "Remote address changed"
      ],
      [
        79,
        "ELIBACC",
        "Can not access a needed shared library"
      ],
      [
        80,
        "ELIBBAD",
        "Accessing a corrupted shared library"
      ],
      [
        81,
        "ELIBSCN",
        ".lib section in a.out corrupted"
      ],
      [
        82,
        "ELIBMAX",
        "Attempting to link in too many shared libraries"
      ],
      [
        83,
        "ELIBEXEC",
        "Cannot exec a shared library directly"
      ],
      [
        84,
        "EILSEQ",
        "Invalid or incomplete multibyte or wide character"
      ],
      [
        85,
        "ERESTART",
        "Interrupted system call should be restarted"
      ],
      [
        86,
        "ESTRPIPE",
        "Streams pipe error"
      ],
      [
        87,
        "EUSERS",
        "Too many users"
      ],
      [
        88,
        "ENOTSOCK",
        "Socket operation on non-socket"
      ],
      [
        89,
        "EDESTADDRREQ",
        "Destination address required"
      ],
      [
        90,
        "EMSGSIZE",
        "Message too long"
      ],
      [
        91,
        "EPROTOTYPE",
        "Protocol wrong type for socket"
      ],
      [
        92,
        "ENOPROTOOPT",
        "Protocol not available"
      ],
      [
        93,
        "EPROTONOSUPPORT",
        "Protocol not supported"
      ],
      [
        94,
        "ESOCKTNOSUPPORT",
        "Socket type not supported"
      ],
      [
        95,
        "EOPNOTSUPP",
        "Operation not supported"
      ],
      [
        96,
        "EPFNOSUPPORT",
        "Protocol family not supported"
      ],
      [
        97,
        "EAFNOSUPPORT",
        "Address family not supported by protocol"
      ],
      [
        98,
        "EADDRINUSE",
        "Address already in use"
      ],
      [
        99,
        "EADDRNOTAVAIL",
        "Cannot assign requested address"
      ],
      [
        100,
        "ENETDOWN",
        "Network is down"
      ],
      [
        101,
        "ENETUNREACH",
        "Network is unreachable"
      ],
      [
        102,
        "ENETRESET",
        "Network dropped connection on reset"
      ],
      [
        103,
        "ECONNABORTED",
        "Software caused connection abort"
      ],
      [
        104,
        "ECONNRESET",
        "Connection reset by peer"
      ],
      [
        105,
        "ENOBUFS",
        "No buffer space available"
      ],
      [
        106,
        "EISCONN",
        "Transport endpoint is already connected"
      ],
      [
        107,
        "ENOTCONN",
        "Transport endpoint is not connected"
      ],
      [
        108,
        "ESHUTDOWN",
        "Cannot send after transport endpoint shutdown"
      ],
      [
        109,
        "ETOOMANYREFS",
        "Too many references: cannot splice"
      ],
      [
        110,
        "ETIMEDOUT",
        "Connection timed out"
      ],
      [
        111,
        "ECONNREFUSED",
        "Connection refused"
      ],
      [
        112,
        "EHOSTDOWN",
        "Host is down"
      ],
      [
        113,
        "EHOSTUNREACH",
        "No route to host"
      ],
      [
        114,
        "EALREADY",
        "Operation already in progress"
      ],
      [
        115,
        "EINPROGRESS",
        "Operation now in progress"
      ],
      [
        116,
        "ESTALE",
        "Stale file handle"
      ],
      [
        117,
        "EUCLEAN",
        "Structure needs cleaning"
      ],
      [
        118,
        "ENOTNAM",
        "Not a XENIX named type file"
      ],
      [
        119,
        "ENAVAIL",
        "No XENIX semaphores available"
      ],
      [
        120,
        "EISNAM",
        "Is a named type file"
      ],
      [
        121,
        "EREMOTEIO",
        "Remote I/O error"
      ],
      [
        122,
        "EDQUOT",
        "Disk quota exceeded"
      ],
      [
        123,
        "ENOMEDIUM",
        "No medium found"
      ],
      [
        124,
        "EMEDIUMTYPE",
        "Wrong medium type"
      ],
      [
        125,
        "ECANCELED",
        "Operation canceled"
      ],
      [
        126,
        "ENOKEY",
        "Required key not available"
      ],
      [
        127,
        "EKEYEXPIRED",
        "Key has expired"
      ],
      [
        128,
        "EKEYREVOKED",
        "Key has been revoked"
      ],
      [
        129,
        "EKEYREJECTED",
        "Key was rejected by service"
      ],
      [
        130,
        "EOWNERDEAD",
        "Owner died"
      ],
      [
        131,
        "ENOTRECOVERABLE",
        "State not recoverable"
      ],
      [
        132,
        "ERFKILL",
        "Operation not possible due to RF-kill"
      ],
      [
        133,
        "EHWPOISON",
        "Memory page has hardware error"
      ]
    ];
    NAMES = /* @__PURE__ */ new Map();
    DESCRIPTIONS = /* @__PURE__ */ new Map();
    for (const [errno, name, description] of TABLE) {
      NAMES.set(errno, name);
      DESCRIPTIONS.set(errno, description);
    }
  }
});

// ffi/mount_error.ts
var MountError;
var init_mount_error = __esm({
  "ffi/mount_error.ts"() {
    init_errno();
    MountError = class _MountError extends Error {
      /** The operation that failed, such as `"mount_setattr"` or `"move_mount"`. */
      op;
      /** The errno name, such as `"EINVAL"`, when a syscall failed. */
      code;
      /** The errno value, when a syscall failed. */
      errno;
      /** The mount source involved. */
      source;
      /** The mount target involved. */
      target;
      /** The user namespace file involved, such as a mount's `usernsPath`. */
      userns;
      #detail;
      #hint;
      /**
       * Builds an error for `op`.
       *
       * @param op The operation that failed.
       * @param options The errno, the paths involved and the reason.
       */
      constructor(op, options = {}) {
        const { errno, source, target, userns, hint, cause } = options;
        const code = errno === void 0 ? void 0 : errnoName(errno);
        let reason = options.detail ?? (errno === void 0 ? "failed" : errnoDescription(errno));
        if (code !== void 0) reason = `${code}: ${reason}`;
        if (hint) reason += ` ${hint}`;
        const where = [
          source === void 0 ? "" : `src=${source}`,
          target === void 0 ? "" : `dst=${target}`,
          userns === void 0 ? "" : `userns=${userns}`
        ].filter(Boolean).join(", ");
        super(`${op}${where ? " " + where : ""}: ${reason}`, {
          cause
        });
        this.name = "MountError";
        this.op = op;
        if (code !== void 0) this.code = code;
        if (errno !== void 0) this.errno = errno;
        if (source !== void 0) this.source = source;
        if (target !== void 0) this.target = target;
        if (userns !== void 0) this.userns = userns;
        this.#detail = options.detail;
        this.#hint = hint || void 0;
      }
      /**
       * The same error with a hint added to its message: a likely cause, or
       * what to do. The op, errno, reason, source and target stay (unless
       * `names` gives other paths), and this error becomes the cause.
       *
       * @param hint The hint, appended after any the error has already, such as
       * `"(writing \"0 1000 1\")"`.
       * @param names Other paths to name, where the caller knows them better.
       * @returns A new error.
       *
       * @example Say what a failed write was writing
       * ```ts
       * import { MountError } from "../mod.ts";
       * const error = new MountError("write", { errno: 1, target: "uid_map" });
       * console.log(error.withHint('(writing "0 1000 1")').message);
       * // 'write dst=uid_map: EPERM: Operation not permitted (writing "0 1000 1")'
       * ```
       */
      withHint(hint, names = {}) {
        return this.#with(names, this.#hint === void 0 ? hint : `${this.#hint} ${hint}`);
      }
      /**
       * The same error naming other paths: the ones the caller gave, where the
       * failing call saw another (a component, a `/proc/self/fd/N`).
       *
       * @param names The paths to name instead.
       * @returns A new error, with this one as its cause.
       *
       * @example Name the target as the caller gave it
       * ```ts
       * import { MountError } from "../mod.ts";
       * const error = new MountError("umount2", { errno: 22, target: "/proc/self/fd/7" });
       * console.log(error.withNames({ target: "/rootfs:/data" }).message);
       * // "umount2 dst=/rootfs:/data: EINVAL: Invalid argument"
       * ```
       */
      withNames(names) {
        return this.#with(names, this.#hint);
      }
      /** This error again, with other paths and hint, and itself as the cause. */
      #with(names, hint) {
        return new _MountError(this.op, {
          errno: this.errno,
          source: names.source ?? this.source,
          target: names.target ?? this.target,
          userns: names.userns ?? this.userns,
          detail: this.#detail,
          hint,
          cause: this
        });
      }
    };
  }
});

// ffi/permission_error.ts
var PermissionError;
var init_permission_error = __esm({
  "ffi/permission_error.ts"() {
    PermissionError = class _PermissionError extends Deno.errors.NotCapable {
      /** The flag that grants the permission, such as `"--allow-ffi"`. */
      flag;
      /** What it is needed for, such as `"call open_tree"`. */
      purpose;
      /**
       * Builds the error.
       *
       * @param flag The flag that grants the permission.
       * @param purpose What it is needed for.
       * @param options The error this one wraps.
       */
      constructor(flag, purpose, options) {
        super(`needs ${flag} to ${purpose}`, options);
        this.name = "NotCapable";
        this.flag = flag;
        this.purpose = purpose;
      }
      /**
       * The same error, said of a public function: `"mountFd needs --allow-ffi
       * to call open_tree"`. The outermost function names itself last. Any other
       * error is returned as it is.
       *
       * @param error What was thrown.
       * @param api The public function that was called.
       * @returns The error to throw.
       */
      static in(error, api) {
        if (!(error instanceof _PermissionError)) return error;
        const named = new _PermissionError(error.flag, error.purpose, {
          cause: error.cause
        });
        named.message = `${api} needs ${error.flag} to ${error.purpose}`;
        return named;
      }
    };
  }
});

// ffi/libc.ts
function assertSupportedArch(arch = Deno.build.arch) {
  if (!ARCHES.includes(arch)) {
    throw new Error(`Unsupported architecture: ${arch} (the constants and syscall numbers are those of ${ARCHES.join(" and ")})`);
  }
}
function bind(loaded2) {
  const s = BOUND.some((name) => loaded2[name] === null) ? {
    ...fallbackSymbols(),
    ...loaded2
  } : loaded2;
  return {
    ...s,
    statx: s.statx ?? ((dirfd, path, flags, mask, buf) => Number(s.syscall_statx(SYS_statx, dirfd, path, flags, mask, buf))),
    open_tree: s.open_tree ?? ((dirfd, path, flags) => Number(s.syscall_open_tree(SYS_open_tree, dirfd, path, flags))),
    move_mount: s.move_mount ?? ((fromDirfd, fromPath, toDirfd, toPath, flags) => Number(s.syscall_move_mount(SYS_move_mount, fromDirfd, fromPath, toDirfd, toPath, flags))),
    mount_setattr: s.mount_setattr ?? ((dirfd, path, flags, attr, size) => Number(s.syscall_mount_setattr(SYS_mount_setattr, dirfd, path, flags, attr, size))),
    openat2: (dirfd, path, how, size) => Number(s.syscall_openat2(SYS_openat2, dirfd, path, how, size))
  };
}
function dlopen(symbols, call) {
  try {
    return Deno.dlopen("libc.so.6", symbols).symbols;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new PermissionError("--allow-ffi", `call ${call}`, {
        cause: error
      });
    }
    throw error;
  }
}
function load(call) {
  assertSupportedArch();
  const symbols = dlopen(MAIN, call);
  const location = symbols.__errno_location();
  if (location === null) throw new Error("Cannot locate errno: got NULL");
  errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(location, 4));
  return symbols;
}
function fallbackSymbols() {
  return fallbacks ??= dlopen(Object.fromEntries(FALLBACKS.map((name) => [
    name,
    SYMBOLS[name]
  ])), "syscall");
}
function libc(call) {
  return table ??= bind(loaded ??= load(call));
}
var SYMBOLS, BOUND, FALLBACKS, MAIN, SYS_open_tree, SYS_move_mount, SYS_openat2, SYS_mount_setattr, SYS_statx, ARCHES, loaded, fallbacks, table, errnoView;
var init_libc = __esm({
  "ffi/libc.ts"() {
    init_permission_error();
    SYMBOLS = {
      // int open(const char *path, int flags, mode_t mode);
      open: {
        parameters: [
          "buffer",
          "i32",
          "u32"
        ],
        result: "i32"
      },
      // int openat(int dirfd, const char *path, int flags, mode_t mode);
      openat: {
        parameters: [
          "i32",
          "buffer",
          "i32",
          "u32"
        ],
        result: "i32"
      },
      // int close(int fd);
      close: {
        parameters: [
          "i32"
        ],
        result: "i32"
      },
      // ssize_t read(int fd, void *buf, size_t count);
      read: {
        parameters: [
          "i32",
          "buffer",
          "usize"
        ],
        result: "isize"
      },
      // ssize_t write(int fd, const void *buf, size_t count);
      write: {
        parameters: [
          "i32",
          "buffer",
          "usize"
        ],
        result: "isize"
      },
      // uid_t geteuid(void);
      geteuid: {
        parameters: [],
        result: "u32"
      },
      // int fcntl(int fd, int cmd, int arg);
      fcntl: {
        parameters: [
          "i32",
          "i32",
          "i32"
        ],
        result: "i32"
      },
      // int ioctl(int fd, unsigned long request);
      ioctl: {
        parameters: [
          "i32",
          "u64"
        ],
        result: "i32"
      },
      // int mount(const char *source, const char *target, const char *fstype,
      //           unsigned long flags, const void *data);
      mount: {
        parameters: [
          "buffer",
          "buffer",
          "buffer",
          "u64",
          "buffer"
        ],
        result: "i32"
      },
      // int umount2(const char *target, int flags);
      umount2: {
        parameters: [
          "buffer",
          "i32"
        ],
        result: "i32"
      },
      // int unshare(int flags);
      unshare: {
        parameters: [
          "i32"
        ],
        result: "i32"
      },
      // int setns(int fd, int nstype);
      setns: {
        parameters: [
          "i32",
          "i32"
        ],
        result: "i32"
      },
      // int chdir(const char *path);
      chdir: {
        parameters: [
          "buffer"
        ],
        result: "i32"
      },
      // int fchdir(int fd);
      fchdir: {
        parameters: [
          "i32"
        ],
        result: "i32"
      },
      // int mkdirat(int dirfd, const char *path, mode_t mode);
      mkdirat: {
        parameters: [
          "i32",
          "buffer",
          "u32"
        ],
        result: "i32"
      },
      // ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size);
      readlinkat: {
        parameters: [
          "i32",
          "buffer",
          "buffer",
          "usize"
        ],
        result: "isize"
      },
      // int fstatfs(int fd, struct statfs *buf);
      fstatfs: {
        parameters: [
          "i32",
          "buffer"
        ],
        result: "i32"
      },
      // int *__errno_location(void);
      __errno_location: {
        parameters: [],
        result: "pointer"
      },
      // glibc >= 2.28: int statx(int dirfd, const char *path, int flags,
      //                          unsigned int mask, struct statx *buf);
      statx: {
        parameters: [
          "i32",
          "buffer",
          "i32",
          "u32",
          "buffer"
        ],
        result: "i32",
        optional: true
      },
      // glibc >= 2.36: int open_tree(int dirfd, const char *path, unsigned int flags);
      open_tree: {
        parameters: [
          "i32",
          "buffer",
          "u32"
        ],
        result: "i32",
        optional: true
      },
      // glibc >= 2.36: int move_mount(int from_dirfd, const char *from_path,
      //                               int to_dirfd, const char *to_path, unsigned int flags);
      move_mount: {
        parameters: [
          "i32",
          "buffer",
          "i32",
          "buffer",
          "u32"
        ],
        result: "i32",
        optional: true
      },
      // glibc >= 2.36: int mount_setattr(int dirfd, const char *path, unsigned int flags,
      //                                  struct mount_attr *attr, size_t size);
      mount_setattr: {
        parameters: [
          "i32",
          "buffer",
          "u32",
          "buffer",
          "usize"
        ],
        result: "i32",
        optional: true
      },
      // long syscall(long number, ...): one entry per call made through it.
      // syscall(SYS_statx, int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
      syscall_statx: {
        name: "syscall",
        parameters: [
          "i64",
          "i32",
          "buffer",
          "i32",
          "u32",
          "buffer"
        ],
        result: "i64"
      },
      // syscall(SYS_open_tree, int dirfd, const char *path, unsigned int flags)
      syscall_open_tree: {
        name: "syscall",
        parameters: [
          "i64",
          "i32",
          "buffer",
          "u32"
        ],
        result: "i64"
      },
      // syscall(SYS_move_mount, int from_dirfd, const char *from_path, int to_dirfd,
      //         const char *to_path, unsigned int flags)
      syscall_move_mount: {
        name: "syscall",
        parameters: [
          "i64",
          "i32",
          "buffer",
          "i32",
          "buffer",
          "u32"
        ],
        result: "i64"
      },
      // syscall(SYS_mount_setattr, int dirfd, const char *path, unsigned int flags,
      //         struct mount_attr *attr, size_t size)
      syscall_mount_setattr: {
        name: "syscall",
        parameters: [
          "i64",
          "i32",
          "buffer",
          "u32",
          "buffer",
          "usize"
        ],
        result: "i64"
      },
      // syscall(SYS_openat2, int dirfd, const char *path, struct open_how *how, size_t size)
      syscall_openat2: {
        name: "syscall",
        parameters: [
          "i64",
          "i32",
          "buffer",
          "buffer",
          "usize"
        ],
        result: "i64"
      }
    };
    BOUND = [
      "statx",
      "open_tree",
      "move_mount",
      "mount_setattr"
    ];
    FALLBACKS = BOUND.map((name) => `syscall_${name}`);
    MAIN = Object.fromEntries(Object.entries(SYMBOLS).filter(([name]) => !FALLBACKS.includes(name)));
    SYS_open_tree = 428n;
    SYS_move_mount = 429n;
    SYS_openat2 = 437n;
    SYS_mount_setattr = 442n;
    SYS_statx = Deno.build.arch === "aarch64" ? 291n : 332n;
    ARCHES = [
      "x86_64",
      "aarch64"
    ];
    errnoView = new Int32Array(1);
    if (Deno.permissions.querySync?.({
      name: "ffi"
    }).state === "granted" && ARCHES.includes(Deno.build.arch)) {
      loaded = load("dlopen");
      table = bind(loaded);
    }
  }
});

// ffi/syscalls.ts
function check(result, code, op, source, target) {
  if (result >= 0) return result;
  throw new MountError(op, {
    errno: code,
    source,
    target
  });
}
function assertPath(value, what) {
  if (typeof value !== "string") {
    throw new TypeError(`Invalid ${what}: expected a string, got ${value === null ? "null" : typeof value}`);
  }
  if (value.includes("\0")) {
    throw new TypeError(`Invalid ${what}: contains a NUL byte: ${JSON.stringify(value)}`);
  }
}
function cString(value, what) {
  assertPath(value, what);
  if (value.length === 0) return EMPTY;
  return encoder.encode(value + "\0");
}
function tempCString(value, what) {
  if (value === scratchPath) return SCRATCH;
  assertPath(value, what);
  const length = value.length;
  if (length === 0) return EMPTY;
  if (length < SCRATCH.length) {
    let i = 0;
    for (; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 127) break;
      SCRATCH[i] = code;
    }
    if (i === length) {
      SCRATCH[length] = 0;
      scratchPath = value;
      return SCRATCH;
    }
    scratchPath = void 0;
  }
  return encoder.encode(value + "\0");
}
function open(path, flags) {
  const cpath = tempCString(path, "path");
  return check(libc("open").open(cpath, flags | O_CLOEXEC, 0), errnoView[0], "open", path);
}
function openAt(dirfd, path, flags, mode = 0) {
  const cpath = tempCString(path, "path");
  return check(libc("openat").openat(dirfd, cpath, flags | O_CLOEXEC, mode), errnoView[0], "open", path);
}
function openat2(dirfd, path, flags, resolve) {
  const cpath = tempCString(path, "path");
  howHalves[LOW] = flags | O_CLOEXEC;
  howHalves[4 + LOW] = resolve;
  return check(libc("openat2").openat2(dirfd, cpath, howBytes, HOW_SIZE), errnoView[0], "openat2", path);
}
function mkdirat(dirfd, path, mode) {
  const cpath = tempCString(path, "path");
  check(libc("mkdirat").mkdirat(dirfd, cpath, mode), errnoView[0], "mkdirat", void 0, path);
}
function close(fd) {
  return libc("close").close(fd) < 0 ? errnoView[0] : 0;
}
function dupCloexec(fd) {
  const op = "fcntl(F_DUPFD_CLOEXEC)";
  return check(libc(op).fcntl(fd, F_DUPFD_CLOEXEC, 0), errnoView[0], op);
}
function namespaceType(fd, path) {
  const op = "ioctl(NS_GET_NSTYPE)";
  return check(libc(op).ioctl(fd, NS_GET_NSTYPE_REQUEST), errnoView[0], op, path);
}
function writeOnce(path, text, dirfd = AT_FDCWD) {
  const cpath = tempCString(path, "path");
  const fd = check(libc("openat").openat(dirfd, cpath, O_WRONLY | O_CLOEXEC, 0), errnoView[0], "open", void 0, path);
  try {
    writeText(fd, text, path);
  } finally {
    close(fd);
  }
}
function writeText(fd, text, path) {
  const bytes = encoder.encode(text);
  const n = check(Number(libc("write").write(fd, bytes, BigInt(bytes.length))), errnoView[0], "write", void 0, path);
  if (n !== bytes.length) {
    throw new MountError("write", {
      target: path,
      detail: `short write: ${n} of ${bytes.length} bytes`
    });
  }
}
function readText(path) {
  const fd = open(path, O_RDONLY);
  try {
    const lib = libc("read");
    let text = "";
    for (; ; ) {
      const chunk = new Uint8Array(4096);
      const n = check(Number(lib.read(fd, chunk, BigInt(chunk.length))), errnoView[0], "read", path);
      if (n === 0) return text + decoder.decode();
      text += decoder.decode(chunk.subarray(0, n), {
        stream: true
      });
    }
  } finally {
    close(fd);
  }
}
function umount2(target, flags) {
  const ctarget = cString(target, "unmount target");
  check(libc("umount2").umount2(ctarget, flags), errnoView[0], "umount2", void 0, target);
}
function chdir(path) {
  const cpath = cString(path, "path");
  check(libc("chdir").chdir(cpath), errnoView[0], "chdir", void 0, path);
}
function fchdir(fd, path) {
  check(libc("fchdir").fchdir(fd), errnoView[0], "fchdir", void 0, path);
}
function readlinkAt(dirfd, path) {
  const cpath = cString(path, "path");
  const buffer = new Uint8Array(4096);
  const size = BigInt(buffer.length);
  const n = check(Number(libc("readlinkat").readlinkat(dirfd, cpath, buffer, size)), errnoView[0], "readlinkat", path);
  return decoder.decode(buffer.subarray(0, n));
}
function fstatfs(fd, names) {
  check(libc("fstatfs").fstatfs(fd, statfsBytes), errnoView[0], "fstatfs", names.source, names.target);
  return statfsWords;
}
function fstatfsFlags(fd, names = {}) {
  return Number(fstatfs(fd, names)[10]);
}
function fstatfsType(fd, names = {}) {
  return Number(fstatfs(fd, names)[0]);
}
function fileInfo(fd, path = "", flags = AT_EMPTY_PATH) {
  const cpath = tempCString(path, "path");
  check(libc("statx").statx(fd, cpath, flags, STATX_WANTED, statxBytes), errnoView[0], "statx", path || void 0);
  const mode = statxShorts[14];
  const mountId = statxWords[0] & STATX_MNT_ID ? statxWords[36 + LOW] + statxWords[37 - LOW] * 2 ** 32 : -1;
  return {
    mode,
    mountId
  };
}
function openTree(dirfd, path, flags) {
  const op = flags & OPEN_TREE_CLONE ? "open_tree(OPEN_TREE_CLONE)" : "open_tree";
  const cpath = tempCString(path, "path");
  return check(libc("open_tree").open_tree(dirfd, cpath, flags | OPEN_TREE_CLOEXEC), errnoView[0], op, path);
}
function moveMount(fromDirfd, fromPath, toDirfd, toPath, flags, names = {}) {
  const cfrom = cString(fromPath, "source path");
  const cto = cString(toPath, "target path");
  check(libc("move_mount").move_mount(fromDirfd, cfrom, toDirfd, cto, flags), errnoView[0], "move_mount", names.source ?? (fromPath || void 0), names.target ?? toPath);
}
function mountSetattr(dirfd, path, flags, attr, names = {}) {
  const op = names.op ?? (attr.attrSet & MOUNT_ATTR_IDMAP ? "mount_setattr(MOUNT_ATTR_IDMAP)" : "mount_setattr");
  const cpath = tempCString(path, "path");
  attrHalves[LOW] = attr.attrSet;
  attrHalves[2 + LOW] = attr.attrClr ?? 0;
  attrHalves[4 + LOW] = attr.propagation ?? 0;
  attrHalves[6 + LOW] = attr.usernsFd ?? 0;
  check(libc("mount_setattr").mount_setattr(dirfd, cpath, flags, attrBytes, ATTR_SIZE), errnoView[0], op, names.source ?? (path || void 0), names.target);
}
var encoder, decoder, NS_GET_NSTYPE_REQUEST, LOW, SCRATCH, EMPTY, scratchPath, howHalves, howBytes, HOW_SIZE, statfsWords, statfsBytes, statxWords, statxShorts, statxBytes, STATX_WANTED, attrHalves, attrBytes, ATTR_SIZE;
var init_syscalls = __esm({
  "ffi/syscalls.ts"() {
    init_constants();
    init_libc();
    init_mount_error();
    encoder = new TextEncoder();
    decoder = new TextDecoder();
    NS_GET_NSTYPE_REQUEST = BigInt(NS_GET_NSTYPE);
    LOW = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 0 : 1;
    SCRATCH = new Uint8Array(4096);
    EMPTY = new Uint8Array(1);
    howHalves = new Uint32Array(6);
    howBytes = new Uint8Array(howHalves.buffer);
    HOW_SIZE = BigInt(howBytes.length);
    statfsWords = new BigUint64Array(16);
    statfsBytes = new Uint8Array(statfsWords.buffer);
    statxWords = new Uint32Array(64);
    statxShorts = new Uint16Array(statxWords.buffer);
    statxBytes = new Uint8Array(statxWords.buffer);
    STATX_WANTED = STATX_TYPE | STATX_MODE | STATX_MNT_ID;
    attrHalves = new Uint32Array(MOUNT_ATTR_SIZE_VER0 / 4);
    attrBytes = new Uint8Array(attrHalves.buffer);
    ATTR_SIZE = BigInt(MOUNT_ATTR_SIZE_VER0);
  }
});

// lib/errors.ts
var errors_exports = {};
__export(errors_exports, {
  MountError: () => MountError,
  describe: () => describe
});
function describe(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  return typeof value;
}
var init_errors = __esm({
  "lib/errors.ts"() {
    init_mount_error();
  }
});

// lib/flags.ts
function stringifyMountFlags(flags) {
  const names = [];
  let seen = 0;
  for (const [name, bit] of MS_NAMES) {
    if ((flags & bit) === bit) {
      seen |= bit;
      names.push(name);
    }
  }
  const rest = (flags & ~seen) >>> 0;
  if (rest !== 0) names.push("0x" + rest.toString(16));
  return names.join("|");
}
function flagsToAttr(flags) {
  let attrSet = 0;
  let attrClr = 0;
  for (const [ms, attr] of BIND_ATTRS) {
    if (flags & ms) attrSet |= attr;
    else attrClr |= attr;
  }
  if (flags & ATIME_FLAGS) {
    attrClr |= MOUNT_ATTR__ATIME;
    attrSet |= flags & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME : flags & MS_NOATIME ? MOUNT_ATTR_NOATIME : MOUNT_ATTR_RELATIME;
    if (flags & MS_NODIRATIME) attrSet |= MOUNT_ATTR_NODIRATIME;
    else attrClr |= MOUNT_ATTR_NODIRATIME;
  }
  return {
    attrSet,
    attrClr
  };
}
function recAttrChange(attr) {
  let attrClr = attr.attrClr;
  if ((attr.attrSet | attr.attrClr) & MOUNT_ATTR__ATIME) attrClr |= MOUNT_ATTR__ATIME;
  return {
    attrSet: attr.attrSet,
    attrClr
  };
}
function statfsToMountFlags(stFlags) {
  let flags = 0;
  for (const [st, ms] of STATFS_FLAGS) if (stFlags & st) flags |= ms;
  if ((flags & ATIME_ENUM_FLAGS) === 0) flags |= MS_STRICTATIME;
  return flags;
}
var MS_NAMES, PROPAGATION_TYPES, BIND_REMOUNT_FLAGS, REFUSED_BIND_FLAGS, PROPAGATION_FLAGS, ATIME_ENUM_FLAGS, ATIME_FLAGS, LOCK_FLAGS, EXT_COPYUP, set, clear, rset, rclear, propagation, MOUNT_OPTIONS, KNOWN_MOUNT_OPTIONS, BIND_ATTRS, STATFS_FLAGS;
var init_flags = __esm({
  "lib/flags.ts"() {
    init_constants();
    MS_NAMES = [
      [
        "MS_RDONLY",
        MS_RDONLY
      ],
      [
        "MS_NOSUID",
        MS_NOSUID
      ],
      [
        "MS_NODEV",
        MS_NODEV
      ],
      [
        "MS_NOEXEC",
        MS_NOEXEC
      ],
      [
        "MS_SYNCHRONOUS",
        MS_SYNCHRONOUS
      ],
      [
        "MS_REMOUNT",
        MS_REMOUNT
      ],
      [
        "MS_MANDLOCK",
        MS_MANDLOCK
      ],
      [
        "MS_DIRSYNC",
        MS_DIRSYNC
      ],
      [
        "MS_NOSYMFOLLOW",
        MS_NOSYMFOLLOW
      ],
      [
        "MS_NOATIME",
        MS_NOATIME
      ],
      [
        "MS_NODIRATIME",
        MS_NODIRATIME
      ],
      [
        "MS_BIND",
        MS_BIND
      ],
      [
        "MS_MOVE",
        MS_MOVE
      ],
      [
        "MS_REC",
        MS_REC
      ],
      [
        "MS_SILENT",
        MS_SILENT
      ],
      [
        "MS_POSIXACL",
        MS_POSIXACL
      ],
      [
        "MS_UNBINDABLE",
        MS_UNBINDABLE
      ],
      [
        "MS_PRIVATE",
        MS_PRIVATE
      ],
      [
        "MS_SLAVE",
        MS_SLAVE
      ],
      [
        "MS_SHARED",
        MS_SHARED
      ],
      [
        "MS_RELATIME",
        MS_RELATIME
      ],
      [
        "MS_I_VERSION",
        MS_I_VERSION
      ],
      [
        "MS_STRICTATIME",
        MS_STRICTATIME
      ],
      [
        "MS_LAZYTIME",
        MS_LAZYTIME
      ]
    ];
    PROPAGATION_TYPES = [
      MS_SHARED,
      MS_SLAVE,
      MS_PRIVATE,
      MS_UNBINDABLE
    ];
    BIND_REMOUNT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW;
    REFUSED_BIND_FLAGS = MS_SYNCHRONOUS | MS_MANDLOCK | MS_DIRSYNC | MS_POSIXACL | MS_I_VERSION | MS_LAZYTIME | MS_MOVE;
    PROPAGATION_FLAGS = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE;
    ATIME_ENUM_FLAGS = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;
    ATIME_FLAGS = ATIME_ENUM_FLAGS | MS_NODIRATIME;
    LOCK_FLAGS = MS_RDONLY | MS_NODEV | MS_NOEXEC | MS_NOSUID | ATIME_FLAGS;
    EXT_COPYUP = 1;
    set = (bits) => ({
      kind: "flag",
      clear: false,
      bits
    });
    clear = (bits) => ({
      kind: "flag",
      clear: true,
      bits
    });
    rset = (bits) => ({
      kind: "recAttr",
      clear: false,
      bits
    });
    rclear = (bits) => ({
      kind: "recAttr",
      clear: true,
      bits
    });
    propagation = (flag) => ({
      kind: "propagation",
      flag
    });
    MOUNT_OPTIONS = {
      async: clear(MS_SYNCHRONOUS),
      atime: clear(MS_NOATIME),
      bind: set(MS_BIND),
      defaults: set(0),
      dev: clear(MS_NODEV),
      diratime: clear(MS_NODIRATIME),
      dirsync: set(MS_DIRSYNC),
      exec: clear(MS_NOEXEC),
      iversion: set(MS_I_VERSION),
      lazytime: set(MS_LAZYTIME),
      loud: clear(MS_SILENT),
      mand: set(MS_MANDLOCK),
      noatime: set(MS_NOATIME),
      nodev: set(MS_NODEV),
      nodiratime: set(MS_NODIRATIME),
      noexec: set(MS_NOEXEC),
      noiversion: clear(MS_I_VERSION),
      nolazytime: clear(MS_LAZYTIME),
      nomand: clear(MS_MANDLOCK),
      norelatime: clear(MS_RELATIME),
      nostrictatime: clear(MS_STRICTATIME),
      nosuid: set(MS_NOSUID),
      nosymfollow: set(MS_NOSYMFOLLOW),
      rbind: set(MS_BIND | MS_REC),
      relatime: set(MS_RELATIME),
      remount: set(MS_REMOUNT),
      ro: set(MS_RDONLY),
      rw: clear(MS_RDONLY),
      silent: set(MS_SILENT),
      strictatime: set(MS_STRICTATIME),
      suid: clear(MS_NOSUID),
      sync: set(MS_SYNCHRONOUS),
      symfollow: clear(MS_NOSYMFOLLOW),
      rprivate: propagation(MS_PRIVATE | MS_REC),
      private: propagation(MS_PRIVATE),
      rslave: propagation(MS_SLAVE | MS_REC),
      slave: propagation(MS_SLAVE),
      rshared: propagation(MS_SHARED | MS_REC),
      shared: propagation(MS_SHARED),
      runbindable: propagation(MS_UNBINDABLE | MS_REC),
      unbindable: propagation(MS_UNBINDABLE),
      rro: rset(MOUNT_ATTR_RDONLY),
      rrw: rclear(MOUNT_ATTR_RDONLY),
      rnosuid: rset(MOUNT_ATTR_NOSUID),
      rsuid: rclear(MOUNT_ATTR_NOSUID),
      rnodev: rset(MOUNT_ATTR_NODEV),
      rdev: rclear(MOUNT_ATTR_NODEV),
      rnoexec: rset(MOUNT_ATTR_NOEXEC),
      rexec: rclear(MOUNT_ATTR_NOEXEC),
      rnodiratime: rset(MOUNT_ATTR_NODIRATIME),
      rdiratime: rclear(MOUNT_ATTR_NODIRATIME),
      rrelatime: rset(MOUNT_ATTR_RELATIME),
      rnorelatime: rclear(MOUNT_ATTR_RELATIME),
      rnoatime: rset(MOUNT_ATTR_NOATIME),
      ratime: rclear(MOUNT_ATTR_NOATIME),
      rstrictatime: rset(MOUNT_ATTR_STRICTATIME),
      rnostrictatime: rclear(MOUNT_ATTR_STRICTATIME),
      rnosymfollow: rset(MOUNT_ATTR_NOSYMFOLLOW),
      rsymfollow: rclear(MOUNT_ATTR_NOSYMFOLLOW),
      tmpcopyup: {
        kind: "extension",
        bits: EXT_COPYUP
      },
      idmap: {
        kind: "idmap",
        recursive: false
      },
      ridmap: {
        kind: "idmap",
        recursive: true
      }
    };
    KNOWN_MOUNT_OPTIONS = Object.keys(MOUNT_OPTIONS).sort();
    BIND_ATTRS = [
      [
        MS_RDONLY,
        MOUNT_ATTR_RDONLY
      ],
      [
        MS_NOSUID,
        MOUNT_ATTR_NOSUID
      ],
      [
        MS_NODEV,
        MOUNT_ATTR_NODEV
      ],
      [
        MS_NOEXEC,
        MOUNT_ATTR_NOEXEC
      ],
      [
        MS_NOSYMFOLLOW,
        MOUNT_ATTR_NOSYMFOLLOW
      ]
    ];
    STATFS_FLAGS = [
      [
        ST_RDONLY,
        MS_RDONLY
      ],
      [
        ST_NOSUID,
        MS_NOSUID
      ],
      [
        ST_NODEV,
        MS_NODEV
      ],
      [
        ST_NOEXEC,
        MS_NOEXEC
      ],
      [
        ST_MANDLOCK,
        MS_MANDLOCK
      ],
      [
        ST_SYNCHRONOUS,
        MS_SYNCHRONOUS
      ],
      [
        ST_NOATIME,
        MS_NOATIME
      ],
      [
        ST_NODIRATIME,
        MS_NODIRATIME
      ],
      [
        ST_RELATIME,
        MS_RELATIME
      ],
      [
        ST_NOSYMFOLLOW,
        MS_NOSYMFOLLOW
      ]
    ];
  }
});

// lib/mount.ts
function isBind(mount) {
  return (mount.flags & MS_BIND) !== 0;
}
var init_mount = __esm({
  "lib/mount.ts"() {
    init_constants();
  }
});

// lib/check.ts
function assertMount(mount, field = "mount") {
  if (typeof mount !== "object" || mount === null) {
    throw new TypeError(`Invalid ${field}: expected an object, got ${describe(mount)}`);
  }
  const m = mount;
  if (typeof m.source !== "string" || m.source.includes("\0")) {
    assertPath(m.source, `${field}.source`);
  }
  if (typeof m.destination !== "string" || m.destination.includes("\0")) {
    assertPath(m.destination, `${field}.destination`);
  }
  if (typeof m.flags !== "number" || !Number.isInteger(m.flags)) {
    throw new TypeError(`Invalid ${field}.flags: expected an integer of MS_* bits, got ${describe(m.flags)}`);
  }
  if (m.idMapping != null) assertIDMapping(m.idMapping, `${field}.idMapping`);
  if (m.clearedFlags !== void 0 || m.propagationFlags !== void 0 || m.recAttr !== void 0) {
    assertMountAttrs(m, field);
  }
}
function assertIDMapping(idMapping, name) {
  if (typeof idMapping !== "object") {
    throw new TypeError(`Invalid ${name}: expected an object, got ${describe(idMapping)}`);
  }
  const { recursive, usernsPath, uidMappings, gidMappings } = idMapping;
  if (recursive !== void 0 && typeof recursive !== "boolean") {
    throw new TypeError(`Invalid ${name}.recursive: expected a boolean, got ${describe(recursive)}`);
  }
  if (usernsPath !== void 0) {
    assertPath(usernsPath, `${name}.usernsPath`);
    if (uidMappings !== void 0 || gidMappings !== void 0) {
      throw new TypeError(`Invalid ${name}: usernsPath excludes uidMappings and gidMappings`);
    }
    return;
  }
  checkIDMaps(uidMappings, `${name}.uidMappings`);
  checkIDMaps(gidMappings, `${name}.gidMappings`);
}
function assertMountAttrs(m, field) {
  const { clearedFlags, propagationFlags, recAttr } = m;
  if (clearedFlags !== void 0 && !Number.isInteger(clearedFlags)) {
    throw new TypeError(`Invalid ${field}.clearedFlags: expected an integer of MS_* bits, got ${describe(clearedFlags)}`);
  }
  if (propagationFlags !== void 0) {
    if (!Array.isArray(propagationFlags)) {
      throw new TypeError(`Invalid ${field}.propagationFlags: expected an array, got ${describe(propagationFlags)}`);
    }
    for (const [i, flag] of propagationFlags.entries()) {
      if (!Number.isInteger(flag) || !PROPAGATION_TYPES.includes(flag & ~(MS_REC | MS_SILENT))) {
        throw new TypeError(`Invalid ${field}.propagationFlags[${i}]: expected one of MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, maybe with MS_REC, got ${describe(flag)}`);
      }
    }
  }
  if (recAttr === void 0) return;
  if (typeof recAttr !== "object" || recAttr === null) {
    throw new TypeError(`Invalid ${field}.recAttr: expected an object, got ${describe(recAttr)}`);
  }
  const attr = recAttr;
  for (const name of [
    "attrSet",
    "attrClr",
    "propagation"
  ]) {
    const value = attr[name];
    if (!Number.isInteger(value) || value < 0) {
      throw new TypeError(`Invalid ${field}.recAttr.${name}: expected a non-negative integer, got ${describe(value)}`);
    }
  }
  if (attr.propagation !== 0 && !PROPAGATION_TYPES.includes(attr.propagation)) {
    throw new TypeError(`Invalid ${field}.recAttr.propagation: expected 0 or one of MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, got ${describe(attr.propagation)}`);
  }
}
function isBareBind(mount) {
  if (typeof mount !== "object" || mount === null) return false;
  const { source, destination, flags } = mount;
  const m = mount;
  return (flags === MS_BIND || flags === BIND_REC) && typeof source === "string" && typeof destination === "string" && m.idMapping == null && m.clearedFlags === void 0 && m.propagationFlags === void 0 && m.recAttr === void 0 && !source.includes("\0") && !destination.includes("\0");
}
function assertBind(mount, op = "mountFd") {
  if (isBind(mount)) return;
  throw new MountError(op, {
    source: mount.source,
    target: mount.destination,
    detail: "new mount api: only bind-mounts are supported"
  });
}
function inRange(value, min) {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value < ID_LIMIT - 1 + min;
}
function badNumber(value, field, min) {
  const range = min === 0 ? "0 to 4294967294" : "1 to 4294967295";
  return new TypeError(`Invalid ${field}: expected an integer from ${range}, got ${describe(value)}`);
}
function badEnd(name, key, end) {
  return new TypeError(`Invalid ${name}: ${key} + size must be below 2^32, got ${end}`);
}
function assertList(maps, field) {
  if (!Array.isArray(maps)) {
    throw new TypeError(`Invalid ${field}: expected an array of { containerID, hostID, size }, got ${describe(maps)}`);
  }
}
function assertEntry(entry, field, i) {
  if (typeof entry !== "object" || entry === null) {
    throw new TypeError(`Invalid ${field}[${i}]: expected { containerID, hostID, size }, got ${describe(entry)}`);
  }
}
function checkEntry(entry, field, i) {
  assertEntry(entry, field, i);
  const { containerID, hostID, size } = entry;
  if (!inRange(size, 1)) throw badNumber(size, `${field}[${i}].size`, 1);
  if (!inRange(containerID, 0)) throw badNumber(containerID, `${field}[${i}].containerID`, 0);
  if (containerID + size >= ID_LIMIT) {
    throw badEnd(`${field}[${i}]`, "containerID", containerID + size);
  }
  if (!inRange(hostID, 0)) throw badNumber(hostID, `${field}[${i}].hostID`, 0);
  if (hostID + size >= ID_LIMIT) throw badEnd(`${field}[${i}]`, "hostID", hostID + size);
}
function checkOverlap(maps, field, side) {
  if (maps.length < 2) return;
  const order = maps.map((_, i) => i).sort((a, b) => maps[a][side] - maps[b][side]);
  for (let k = 1; k < order.length; k++) {
    const prev = maps[order[k - 1]];
    if (prev[side] + prev.size > maps[order[k]][side]) {
      const [i, j] = [
        order[k - 1],
        order[k]
      ].sort((a, b) => a - b);
      throw new TypeError(`Invalid ${field}: entries ${i} and ${j} overlap in ${side}`);
    }
  }
}
function checkIDMaps(maps, field) {
  assertList(maps, field);
  if (maps.length === 0) {
    throw new TypeError(`Invalid ${field}: needs at least one entry`);
  }
  if (maps.length > MAX_ID_MAP_ENTRIES) {
    throw new TypeError(`Invalid ${field}: the kernel takes at most ${MAX_ID_MAP_ENTRIES} entries, got ${maps.length}`);
  }
  for (let i = 0; i < maps.length; i++) checkEntry(maps[i], field, i);
  const checked = maps;
  checkOverlap(checked, field, "containerID");
  checkOverlap(checked, field, "hostID");
  if (checked.length * MAX_LINE > MAX_MAP_TEXT) {
    const bytes = checked.reduce((n, m) => n + `${m.containerID} ${m.hostID} ${m.size}
`.length, 0);
    if (bytes > MAX_MAP_TEXT) {
      throw new TypeError(`Invalid ${field}: the kernel takes at most ${MAX_MAP_TEXT} bytes of map text, these ${checked.length} entries make ${bytes}`);
    }
  }
  return checked;
}
function checkMapping(mapping, field) {
  if (typeof mapping !== "object" || mapping === null) {
    throw new TypeError(`Invalid ${field}: expected { uidMappings, gidMappings }, got ${describe(mapping)}`);
  }
  const { uidMappings, gidMappings } = mapping;
  checkIDMaps(uidMappings, `${field}.uidMappings`);
  checkIDMaps(gidMappings, `${field}.gidMappings`);
  return mapping;
}
function resolveIDMapping(idMapping, context) {
  const { usernsPath, uidMappings, gidMappings } = idMapping;
  if (usernsPath !== void 0 || uidMappings !== void 0 || gidMappings !== void 0) {
    return idMapping;
  }
  const resolved = {};
  if (idMapping.recursive !== void 0) resolved.recursive = idMapping.recursive;
  if (context.usernsPath !== void 0) {
    resolved.usernsPath = context.usernsPath;
    return resolved;
  }
  if (context.uidMappings !== void 0) resolved.uidMappings = context.uidMappings;
  if (context.gidMappings !== void 0) resolved.gidMappings = context.gidMappings;
  return resolved;
}
var MAX_ID_MAP_ENTRIES, MAX_MAP_TEXT, MAX_LINE, ID_LIMIT, BIND_REC;
var init_check = __esm({
  "lib/check.ts"() {
    init_mount_error();
    init_syscalls();
    init_errors();
    init_flags();
    init_constants();
    init_mount();
    MAX_ID_MAP_ENTRIES = 340;
    MAX_MAP_TEXT = 4095;
    MAX_LINE = 33;
    ID_LIMIT = 2 ** 32;
    BIND_REC = MS_BIND | MS_REC;
  }
});

// lib/validate.ts
var validate_exports = {};
__export(validate_exports, {
  validateMount: () => validateMount
});
function invalid(mount, rule, cause) {
  return new MountError("validate", {
    target: mount.destination,
    detail: rule,
    cause
  });
}
function validateMount(mount, context = {}) {
  if (typeof mount !== "object" || mount === null) {
    throw new TypeError(`Invalid mount: expected an object, got ${describe(mount)}`);
  }
  assertPath(mount.destination, "mount.destination");
  assertPath(mount.source, "mount.source");
  if (!mount.destination.startsWith("/")) {
    throw invalid(mount, `mount destination ${mount.destination} is not absolute`);
  }
  if (isBind(mount) && mount.data) {
    const unknown = mount.data.split(",").map((option) => JSON.stringify(option)).join(", ");
    throw invalid(mount, `bind mounts cannot have any filesystem-specific options applied: ${unknown} (not a known mount option)`);
  }
  const recAttr = mount.recAttr;
  if (recAttr && ((recAttr.attrSet | recAttr.attrClr) & MOUNT_ATTR_IDMAP) !== 0) {
    throw invalid(mount, "mount configuration cannot contain recAttr for MOUNT_ATTR_IDMAP");
  }
  const idMapping = mount.idMapping;
  if (idMapping == null) return;
  if (!isBind(mount)) {
    throw invalid(mount, "id-mapped mounts are only supported for bind-mounts");
  }
  const { usernsPath, uidMappings, gidMappings } = resolveIDMapping(idMapping, context);
  if (usernsPath !== void 0) {
    if (uidMappings !== void 0 || gidMappings !== void 0) {
      throw invalid(mount, "id-mapped mounts cannot have both userns_path and uid and gid mappings specified");
    }
    assertPath(usernsPath, "mount.idMapping.usernsPath");
    return;
  }
  if (!uidMappings?.length || !gidMappings?.length) {
    throw invalid(mount, "id-mapped mounts must have both uid and gid mappings specified");
  }
  for (const [maps, field] of [
    [
      uidMappings,
      "uidMappings"
    ],
    [
      gidMappings,
      "gidMappings"
    ]
  ]) {
    try {
      checkIDMaps(maps, `idMapping.${field}`);
    } catch (error) {
      throw invalid(mount, error.message.replace(/^Invalid /, "invalid "), error);
    }
  }
}
var init_validate = __esm({
  "lib/validate.ts"() {
    init_constants();
    init_mount_error();
    init_syscalls();
    init_errors();
    init_check();
    init_mount();
  }
});

// lib/fd.ts
var OwnedFd;
var init_fd = __esm({
  "lib/fd.ts"() {
    init_syscalls();
    OwnedFd = class _OwnedFd {
      #fd;
      /**
       * Takes ownership of `fd`.
       *
       * @param fd An open fd, which this object now closes.
       * @throws {TypeError} If `fd` is not a non-negative integer.
       */
      constructor(fd) {
        if (!Number.isInteger(fd) || fd < 0) {
          throw new TypeError(`Invalid fd: expected a non-negative integer, got ${fd}`);
        }
        this.#fd = fd;
      }
      /** The fd number, or -1 once closed. */
      get fd() {
        return this.#fd;
      }
      /** Whether {@linkcode OwnedFd.close} has been called. */
      get closed() {
        return this.#fd < 0;
      }
      /** Closes the fd. Calling it again does nothing. */
      close() {
        const fd = this.#fd;
        if (fd < 0) return;
        this.#fd = -1;
        close(fd);
      }
      /**
       * A new, independent fd for the same file, with close-on-exec set.
       *
       * @returns The copy, which the caller closes.
       * @throws {TypeError} If this fd is closed.
       * @throws {MountError} With op `"fcntl(F_DUPFD_CLOEXEC)"` if the dup fails.
       */
      dup() {
        if (this.#fd < 0) throw new TypeError("Cannot dup a closed fd");
        return new _OwnedFd(dupCloexec(this.#fd));
      }
      /** Closes the fd; for `using`. */
      [Symbol.dispose]() {
        this.close();
      }
      /**
       * Shows the fd, for `console.log`.
       *
       * @param inspect Deno's inspect function.
       * @param options Its options.
       * @returns Such as `OwnedFd { fd: 21 }`.
       */
      [Symbol.for("Deno.customInspect")](inspect, options) {
        return `OwnedFd ${inspect(this.closed ? {
          closed: true
        } : {
          fd: this.#fd
        }, options)}`;
      }
    };
  }
});

// lib/hints.ts
function inInitialUserNamespace() {
  if (initial === void 0) {
    try {
      initial = /^\s*0\s+0\s+4294967295\s*$/.test(readText("/proc/self/uid_map"));
    } catch {
      initial = true;
    }
  }
  return initial;
}
function explainSourceError(error, mount) {
  if (!(error instanceof MountError)) return error;
  const { op, code } = error;
  if (code === "EPERM" && (op === "open_tree(OPEN_TREE_CLONE)" || op === "move_mount")) {
    return error.withHint(`(making a mount needs CAP_SYS_ADMIN over this mount namespace: run as root, or rootless inside ${ROOTLESS_COMMAND})`);
  }
  if (code === "EINVAL" && op === "open_tree(OPEN_TREE_CLONE)" && !(mount.flags & MS_REC)) {
    return error.withHint("(a less privileged mount namespace can't copy this tree without its submounts: bind it recursively, with rbind or MS_REC)");
  }
  if (op !== "mount_setattr(MOUNT_ATTR_IDMAP)") return error;
  if (code === "EPERM") {
    return error.withHint(inInitialUserNamespace() ? "(the user namespace is the initial one, or the mount is id-mapped already)" : "(rootless, only a filesystem mounted inside this user namespace can be id-mapped, such as a tmpfs mounted after unshare --user --mount)");
  }
  if (code === "EINVAL") {
    const unmapped = unmappedLists(mount.idMapping?.usernsPath);
    return error.withHint(unmapped === void 0 ? "(maybe the filesystem used doesn't support idmap mounts on this kernel?)" : `(the user namespace has no ${unmapped}: write its uid_map and gid_map first)`);
  }
  return error;
}
function unmappedLists(usernsPath) {
  const pid = usernsPath?.match(/^\/proc\/(\d+)\/ns\/user$/)?.[1];
  if (pid === void 0) return void 0;
  try {
    const empty = [
      "uid",
      "gid"
    ].filter((kind) => readText(`/proc/${pid}/${kind}_map`).trim() === "");
    return empty.length === 0 ? void 0 : empty.map((kind) => `${kind} map`).join(" or ");
  } catch {
    return void 0;
  }
}
var ROOTLESS_COMMAND, initial;
var init_hints = __esm({
  "lib/hints.ts"() {
    init_constants();
    init_mount_error();
    init_syscalls();
    ROOTLESS_COMMAND = "unshare --user --map-auto --map-root-user --mount";
  }
});

// lib/namespace_file.ts
function typeName(type) {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16)}`;
}
function openNamespaceFile(path, kind) {
  const { type: expected, op } = KINDS[kind];
  const names = kind === "user" ? {
    userns: path
  } : {
    source: path
  };
  let fd;
  try {
    fd = new OwnedFd(open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  } catch (error) {
    if (!(error instanceof MountError)) throw error;
    throw new MountError(error.op, {
      errno: error.errno,
      ...names,
      hint: error.code === "EACCES" ? "(a namespace of another process needs ptrace access to it)" : void 0,
      cause: error
    });
  }
  let type;
  try {
    type = namespaceType(fd.fd, path);
  } catch (error) {
    fd.close();
    if (error instanceof MountError && error.code === "ENOTTY") {
      throw new MountError(op, {
        ...names,
        detail: `not a namespace file (expected /proc/PID/ns/${kind} or a bind mount of one)`,
        cause: error
      });
    }
    throw error;
  }
  if (type !== expected) {
    fd.close();
    throw new MountError(op, {
      ...names,
      detail: `not a ${typeName(expected)} namespace (namespace type: ${typeName(type)})`
    });
  }
  return fd;
}
var KINDS, TYPE_NAMES;
var init_namespace_file = __esm({
  "lib/namespace_file.ts"() {
    init_constants();
    init_mount_error();
    init_syscalls();
    init_fd();
    KINDS = {
      user: {
        type: CLONE_NEWUSER,
        op: "open userns"
      },
      mnt: {
        type: CLONE_NEWNS,
        op: "open mntns"
      }
    };
    TYPE_NAMES = /* @__PURE__ */ new Map([
      [
        CLONE_NEWNS,
        "mount"
      ],
      [
        CLONE_NEWUSER,
        "user"
      ],
      [
        CLONE_NEWPID,
        "pid"
      ],
      [
        CLONE_NEWNET,
        "network"
      ],
      [
        CLONE_NEWIPC,
        "ipc"
      ],
      [
        CLONE_NEWUTS,
        "uts"
      ],
      [
        CLONE_NEWCGROUP,
        "cgroup"
      ],
      [
        CLONE_NEWTIME,
        "time"
      ]
    ]);
  }
});

// lib/spawn.ts
function findProgram(name, dirs = SYSTEM_DIRS) {
  for (const dir of dirs) {
    const path = `${dir}/${name}`;
    let fd;
    try {
      fd = open(path, O_PATH);
    } catch (error) {
      if (error instanceof MountError) continue;
      throw error;
    }
    close(fd);
    return path;
  }
  return name;
}
function granted(command) {
  return Deno.permissions.querySync({
    name: "run",
    command
  }).state === "granted";
}
var SYSTEM_DIRS, ffiGranted, Program, UNSHARE, NSENTER, CAT;
var init_spawn = __esm({
  "lib/spawn.ts"() {
    init_constants();
    init_errno();
    init_mount_error();
    init_permission_error();
    init_syscalls();
    SYSTEM_DIRS = [
      "/usr/bin",
      "/bin",
      "/usr/sbin",
      "/sbin"
    ];
    ffiGranted = Deno.permissions.querySync?.({
      name: "ffi"
    }).state === "granted";
    Program = class {
      /** Its name, such as `"unshare"`. */
      name;
      /** What it is for, said in a permission error: `"which ..."`. */
      purpose;
      #path;
      #granted = false;
      /**
       * Names a program; finds it now if `--allow-ffi` is granted.
       *
       * @param name Its name.
       * @param purpose What it is for, for a permission error.
       */
      constructor(name, purpose) {
        this.name = name;
        this.purpose = purpose;
        if (ffiGranted) this.#path = findProgram(name);
      }
      /**
       * Its absolute path, or its name if no system directory holds it (then
       * `PATH` is searched at spawn time). Found once.
       *
       * @throws {PermissionError} Without `--allow-ffi`, on first use.
       */
      get path() {
        return this.#path ??= findProgram(this.name);
      }
      /**
       * Checks, without running anything, that Deno lets this process spawn it.
       * One permission query when it is granted, and none once it was.
       *
       * @throws {PermissionError} Naming the flag: `--allow-run=NAME` when no
       * copy of it is granted; `--allow-run=PATH` when the one granted is another
       * (an earlier one in `PATH`) than the one found in a system directory.
       * Without `--allow-ffi` if the program was not found yet.
       */
      checkPermission() {
        if (this.#granted) return;
        if (this.#path !== void 0 && granted(this.#path)) {
          this.#granted = true;
          return;
        }
        const { name } = this;
        const missing = () => new PermissionError(`--allow-run=${name}`, `spawn ${name}, ${this.purpose}`);
        if (!granted(name) && !SYSTEM_DIRS.some((dir) => granted(`${dir}/${name}`))) throw missing();
        const path = this.path;
        if (granted(path)) {
          this.#granted = true;
          return;
        }
        if (path === name) throw missing();
        throw new PermissionError(`--allow-run=${path}`, `spawn ${path}, ${this.purpose} (--allow-run=${name} allows another ${name}, found first in PATH)`);
      }
      /**
       * Spawns it with `Deno.Command`, by its path, after the permission check.
       *
       * @param args Its arguments.
       * @param options The other `Deno.Command` options.
       * @returns The running child.
       * @throws {PermissionError} As {@linkcode Program.checkPermission}.
       * @throws {MountError} With op `"spawn PATH"`: code `ENOENT` if it is
       * missing, naming where it was looked for.
       */
      spawn(args, options) {
        this.checkPermission();
        const path = this.path;
        try {
          return new Deno.Command(path, {
            ...options,
            args
          }).spawn();
        } catch (error) {
          if (error instanceof Deno.errors.NotCapable) {
            throw new PermissionError(`--allow-run=${this.name}`, `spawn ${path}, ${this.purpose}`, {
              cause: error
            });
          }
          const op = `spawn ${path}`;
          if (error instanceof Deno.errors.NotFound) {
            throw new MountError(op, {
              errno: errnoValue("ENOENT"),
              detail: path === this.name ? `${path} was not found in ${SYSTEM_DIRS.join(", ")} or PATH` : `${path} is gone`,
              cause: error
            });
          }
          throw new MountError(op, {
            detail: error instanceof Error ? error.message : String(error),
            cause: error
          });
        }
      }
    };
    UNSHARE = new Program("unshare", "which makes user namespaces for id mappings");
    NSENTER = new Program("nsenter", "which reads the mappings of a user namespace it joins");
    CAT = new Program("cat", "which unshare and nsenter run");
  }
});

// lib/idmap.ts
function rangeKeys(maps) {
  if (maps.length === 1) {
    const { containerID, hostID, size } = maps[0];
    return `${containerID}:${hostID}:${size}`;
  }
  return maps.map(({ containerID, hostID, size }) => `${containerID}:${hostID}:${size}`).sort().join(",");
}
function sameRanges(maps, values, at) {
  for (let i = 0; i < maps.length; i++, at += 3) {
    const { containerID, hostID, size } = maps[i];
    if (containerID !== values[at] || hostID !== values[at + 1] || size !== values[at + 2]) {
      return -1;
    }
  }
  return at;
}
function holds(memo, mapping) {
  const { uidMappings, gidMappings } = mapping;
  if (uidMappings !== memo.uidMappings || gidMappings !== memo.gidMappings) return false;
  if ((uidMappings.length + gidMappings.length) * 3 !== memo.values.length) return false;
  const at = sameRanges(uidMappings, memo.values, 0);
  return at >= 0 && sameRanges(gidMappings, memo.values, at) >= 0;
}
function mappingKey(mapping) {
  return knownKey(mapping) ?? newKey(mapping);
}
function knownKey(mapping) {
  const memo = memos.get(mapping);
  return memo !== void 0 && holds(memo, mapping) ? memo.key : void 0;
}
function newKey(mapping) {
  const { uidMappings, gidMappings } = mapping;
  const key = `uid=${rangeKeys(uidMappings)};gid=${rangeKeys(gidMappings)}`;
  const values = [];
  for (const { containerID, hostID, size } of uidMappings) values.push(containerID, hostID, size);
  for (const { containerID, hostID, size } of gidMappings) values.push(containerID, hostID, size);
  memos.set(mapping, {
    uidMappings,
    gidMappings,
    values,
    key
  });
  return key;
}
function formatIDMaps(maps) {
  let text = "";
  for (const { containerID, hostID, size } of maps) {
    text += `${containerID} ${hostID} ${size}
`;
  }
  return text;
}
function parseIDMap(text, what) {
  const maps = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    const match = MAP_LINE.exec(line);
    const [containerID, hostID, size] = match ? match.slice(1).map(Number) : [];
    if (!match || containerID >= ID_LIMIT2 || hostID >= ID_LIMIT2 || size >= ID_LIMIT2 || size < 1) {
      throw new TypeError(`Cannot parse ${what}: line ${i + 1}: expected "containerID hostID size", got ${JSON.stringify(line)}`);
    }
    maps.push({
      containerID,
      hostID,
      size
    });
  });
  return maps;
}
var memos, ID_LIMIT2, MAP_LINE;
var init_idmap = __esm({
  "lib/idmap.ts"() {
    init_mount_error();
    init_permission_error();
    init_syscalls();
    init_spawn();
    memos = /* @__PURE__ */ new WeakMap();
    ID_LIMIT2 = 2 ** 32;
    MAP_LINE = /^\s*(\d+)\s+(\d+)\s+(\d+)\s*$/;
  }
});

// lib/spawn_limit.ts
var SpawnLimit;
var init_spawn_limit = __esm({
  "lib/spawn_limit.ts"() {
    SpawnLimit = class {
      /** How many permits there are. */
      max;
      #used = 0;
      #waiters = /* @__PURE__ */ new Set();
      #onFree;
      /**
       * Makes the limit.
       *
       * @param max How many permits there are.
       * @param onFree Called when a permit is given back and nobody waits for it.
       */
      constructor(max, onFree) {
        this.max = max;
        this.#onFree = onFree;
      }
      /** How many permits are held now. */
      get used() {
        return this.#used;
      }
      /** How many callers wait in line. */
      get waiting() {
        return this.#waiters.size;
      }
      /**
       * A permit if one is free and nobody waits for one.
       *
       * @returns Its release, or `undefined`.
       */
      tryAcquire() {
        if (this.#used >= this.max || this.#waiters.size > 0) return void 0;
        this.#used++;
        return this.#release();
      }
      /**
       * A permit, once one is free and every earlier caller has had one.
       *
       * @param signal Leaves the line when aborted.
       * @returns Its release.
       * @throws The signal's reason, once aborted.
       */
      acquire(signal) {
        if (signal?.aborted) return Promise.reject(signal.reason);
        const release = this.tryAcquire();
        if (release !== void 0) return Promise.resolve(release);
        return new Promise((resolve, reject) => {
          const onAbort = () => {
            if (this.#waiters.delete(waiter)) reject(signal.reason);
          };
          const waiter = {
            resolve(release2) {
              signal?.removeEventListener("abort", onAbort);
              resolve(release2);
            }
          };
          this.#waiters.add(waiter);
          signal?.addEventListener("abort", onAbort, {
            once: true
          });
        });
      }
      #release() {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          const [next] = this.#waiters;
          if (next !== void 0) {
            this.#waiters.delete(next);
            next.resolve(this.#release());
            return;
          }
          this.#used--;
          this.#onFree?.();
        };
      }
    };
  }
});

// lib/userns_helper.ts
function within(promise, ms, signal) {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const timeout = AbortSignal.timeout(Math.min(Math.ceil(ms), MAX_DELAY));
  return new Promise((resolve, reject) => {
    const onTimeout = () => {
      done();
      resolve(false);
    };
    const onAbort = () => {
      done();
      reject(signal.reason);
    };
    const done = () => {
      timeout.removeEventListener("abort", onTimeout);
      signal?.removeEventListener("abort", onAbort);
    };
    timeout.addEventListener("abort", onTimeout, {
      once: true
    });
    signal?.addEventListener("abort", onAbort, {
      once: true
    });
    promise.then(() => {
      done();
      resolve(true);
    }, (error) => {
      done();
      reject(error);
    });
  });
}
async function createUserns(mapping, signal, timeout, limit) {
  signal.throwIfAborted();
  const release = limit.tryAcquire() ?? await limit.acquire(signal);
  let helper;
  try {
    helper = new Helper({
      pooled: false,
      timeout,
      onGone: release
    });
  } catch (error) {
    release();
    throw error;
  }
  let userns;
  let failure;
  try {
    await helper.handshake(signal);
    userns = helper.map(mapping);
  } catch (error) {
    failure = error;
    helper.kill();
  }
  const onAbort = () => helper.kill();
  signal.addEventListener("abort", onAbort, {
    once: true
  });
  let end;
  try {
    end = await helper.end(failure !== void 0);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (failure === void 0) return userns;
  if (failure instanceof HelperExited) throw exitedError(end);
  throw failure;
}
function exitedError(end) {
  const { status, stderr } = end;
  const how = status === void 0 ? "and was not reaped in time" : `(${status.signal ?? `exit code ${status.code}`})`;
  return new MountError("userns helper", {
    detail: `${UNSHARE.path} exited before entering a new user namespace ${how}${stderr ? `: ${stderr}` : ""}`
  });
}
function ownRanges(file) {
  let maps;
  try {
    maps = parseIDMap(readText(`/proc/self/${file}`), file);
  } catch {
    return void 0;
  }
  if (maps.length === 1 && maps[0].hostID === 0 && maps[0].size === 4294967295) return void 0;
  const ranges = maps.map((m) => `${m.containerID}..${m.containerID + m.size - 1}`).join(", ");
  const kind = file === "uid_map" ? "uids" : "gids";
  return `(this process maps only the ${kind} ${ranges}: a range must lie within one of these; split one that spans two)`;
}
var PING, ECHO_SIZE, HelperExited, Helper, MAX_DELAY;
var init_userns_helper = __esm({
  "lib/userns_helper.ts"() {
    init_constants();
    init_errno();
    init_mount_error();
    init_syscalls();
    init_fd();
    init_idmap();
    init_spawn();
    PING = new Uint8Array([
      46
    ]);
    ECHO_SIZE = 16;
    HelperExited = class extends Error {
    };
    Helper = class {
      /** The helper's pid. */
      pid;
      #child;
      #stdin;
      #stdout;
      #timeout;
      #onGone;
      #gone = Promise.withResolvers();
      #proc = -1;
      /** From {@linkcode Helper.prepare}: its namespace, uid_map and gid_map. */
      #prepared;
      #pinError;
      #entered = false;
      #exited = false;
      #end;
      /**
       * Spawns a helper and pins its `/proc/PID`. Its stderr is read only once
       * it has failed (a pipe holds what `unshare` may say), so that a helper
       * waiting idle has no read pending. Its stdout is read into small buffers
       * of ours: Deno's default reads allocate 64 KiB each, which a thousand
       * helpers turn into megabytes of RSS.
       *
       * @param options Pooled or not, the timeout, and what to call once it is
       * reaped.
       * @throws {MountError} With op `"spawn PATH"` if it can't be spawned; then
       * `onGone` is not called.
       * @throws {PermissionError} Without `--allow-run` for `unshare`.
       */
      constructor(options) {
        const child = UNSHARE.spawn([
          "--user",
          "--",
          CAT.path
        ], {
          stdin: "piped",
          stdout: "piped",
          stderr: "piped"
        });
        this.#child = child;
        this.pid = child.pid;
        this.#timeout = options.timeout;
        this.#onGone = options.onGone;
        try {
          this.#proc = open(`/proc/${child.pid}`, O_PATH | O_DIRECTORY);
        } catch (error) {
          this.#pinError = error;
          this.kill();
        }
        if (options.pooled) child.unref();
        this.#stdin = child.stdin.getWriter();
        this.#stdout = child.stdout.getReader({
          mode: "byob"
        });
        child.status.then(() => {
          this.#exited = true;
        }, () => {
        });
      }
      /** Settles once the helper has exited and Deno has reaped it. */
      get status() {
        return this.#child.status;
      }
      /** Settles once {@linkcode Helper.end} is over: reaped, or given up on. */
      get gone() {
        return this.#gone.promise;
      }
      /** Whether it echoed from its new namespace. */
      get entered() {
        return this.#entered;
      }
      /** Whether it has exited and been reaped. */
      get exited() {
        return this.#exited;
      }
      /** Whether {@linkcode Helper.end} was called: it is on its way out. */
      get ending() {
        return this.#end !== void 0;
      }
      /**
       * Pings the helper and waits for the echo, which it sends from its new
       * namespace. Between the ping and {@linkcode Helper.end}, nothing reads
       * its stdout.
       *
       * @param signal Rejects the wait with its reason.
       * @throws {HelperExited} If it exits first.
       * @throws {MountError} With code `ETIMEDOUT` if it does not echo in time,
       * or the error of pinning its `/proc/PID`.
       */
      async handshake(signal) {
        if (this.#pinError !== void 0) throw this.#pinError;
        const echo = (async () => {
          await this.#stdin.write(PING).catch(() => {
          });
          const { done } = await this.#stdout.read(new Uint8Array(ECHO_SIZE));
          if (done) throw new HelperExited();
        })();
        echo.catch(() => {
        });
        const ok = await within(echo, this.#timeout, signal);
        if (!ok) {
          throw new MountError("userns helper", {
            errno: errnoValue("ETIMEDOUT"),
            detail: `${UNSHARE.path} did not enter a new user namespace within ${this.#timeout} ms`
          });
        }
        this.#entered = true;
      }
      /**
       * Does all of a map that does not depend on the mapping: denies
       * `setgroups`, and opens the namespace, its `uid_map` and its `gid_map`. A
       * pooled helper does it while it waits, so that a get only writes two
       * maps; {@linkcode Helper.map} does it if it was not done. Call it after
       * {@linkcode Helper.handshake}.
       *
       * @throws {MountError} As {@linkcode Helper.map}; then nothing is left
       * open.
       */
      prepare() {
        if (this.#prepared !== void 0) return;
        this.#write("setgroups", "deny\n");
        const opened = [];
        const openHere = (file, flags) => {
          try {
            const fd = openAt(this.#proc, file, flags);
            opened.push(fd);
            return fd;
          } catch (error) {
            for (const fd of opened) close(fd);
            if (!(error instanceof MountError)) throw error;
            throw error.withNames({
              source: `/proc/${this.pid}/${file}`
            });
          }
        };
        this.#prepared = {
          userns: openHere("ns/user", O_RDONLY),
          uidMap: openHere("uid_map", O_WRONLY),
          gidMap: openHere("gid_map", O_WRONLY)
        };
      }
      /**
       * Maps the helper's user namespace and opens it, through its pinned
       * `/proc/PID`. Call it once, after {@linkcode Helper.handshake}.
       *
       * @param mapping The checked mapping.
       * @returns A close-on-exec fd of the namespace.
       * @throws {MountError} If the kernel refuses a map (naming the file and the
       * text), or with code `ESRCH` if the helper is gone.
       */
      map(mapping) {
        this.prepare();
        const { userns, uidMap, gidMap } = this.#prepared;
        this.#prepared = void 0;
        try {
          this.#writeTo(uidMap, "uid_map", formatIDMaps(mapping.uidMappings));
          this.#writeTo(gidMap, "gid_map", formatIDMaps(mapping.gidMappings));
        } catch (error) {
          close(userns);
          throw error;
        } finally {
          close(uidMap);
          close(gidMap);
        }
        return new OwnedFd(userns);
      }
      /** Makes the helper keep Deno running again, for one that waited in a pool. */
      ref() {
        if (this.#exited) return;
        try {
          this.#child.ref();
        } catch {
        }
      }
      /** Kills the helper, if it still runs; {@linkcode Helper.end} reaps it. */
      kill() {
        try {
          this.#child.kill("SIGKILL");
        } catch {
        }
      }
      /**
       * Lets the helper go (EOF on its stdin ends it) and reaps it. It has the
       * timeout to exit, then it is killed; if it is still not reaped a timeout
       * later (stuck in the kernel), it is given up on: Deno no longer waits
       * for it. Calling it again returns the same promise: the first call
       * decides about stderr.
       *
       * @param stderr Whether to read its stderr, for an error message.
       * @returns How it ended.
       */
      end(stderr = false) {
        return this.#end ??= this.#finish(stderr);
      }
      async #finish(wantStderr) {
        try {
          this.#unpin();
          this.ref();
          const stderr = wantStderr ? new Response(this.#child.stderr).text().catch(() => "") : this.#child.stderr.cancel().then(() => "", () => "");
          this.#stdout.cancel().catch(() => {
          });
          this.#stdin.close().catch(() => {
          });
          const exited = () => this.#exited;
          if (!exited() && !await within(this.#child.status, this.#timeout)) {
            this.kill();
            if (!await within(this.#child.status, this.#timeout)) this.#child.unref();
          }
          const status = exited() ? await this.#child.status : void 0;
          return {
            status,
            stderr: status === void 0 ? "" : (await stderr).trim()
          };
        } finally {
          this.#unpin();
          this.#onGone?.();
          this.#gone.resolve();
        }
      }
      #unpin() {
        const prepared = this.#prepared;
        this.#prepared = void 0;
        if (prepared !== void 0) {
          for (const fd of [
            prepared.userns,
            prepared.uidMap,
            prepared.gidMap
          ]) close(fd);
        }
        if (this.#proc < 0) return;
        close(this.#proc);
        this.#proc = -1;
      }
      /** Writes one of the helper's /proc files whole, by name. */
      #write(file, text) {
        try {
          writeOnce(file, text, this.#proc);
        } catch (error) {
          throw this.#writeError(error, file, text);
        }
      }
      /** Writes one of the helper's /proc files whole, opened before. */
      #writeTo(fd, file, text) {
        try {
          writeText(fd, text, file);
        } catch (error) {
          throw this.#writeError(error, file, text);
        }
      }
      /** A failed write's error, with the text, the file's path, and whose ids can be mapped. */
      #writeError(error, file, text) {
        if (!(error instanceof MountError)) return error;
        const writing = `(writing ${JSON.stringify(text.trimEnd())})`;
        const names = {
          target: `/proc/${this.pid}/${file}`
        };
        const own = error.code === "EPERM" && file !== "setgroups" ? ownRanges(file) : void 0;
        return error.withHint(own === void 0 ? writing : `${writing} ${own}`, names);
      }
    };
    MAX_DELAY = 2 ** 31 - 1;
  }
});

// lib/userns_pool.ts
async function useSlot(slot, mapping, signal) {
  const { helper } = slot;
  if (!helper.entered) {
    try {
      await orAbort(slot.handshake, signal);
    } catch {
      slot.controller.abort(signal.reason);
      helper.kill();
      await helper.end();
      signal.throwIfAborted();
      return void 0;
    }
  }
  let userns;
  try {
    userns = helper.map(mapping);
  } catch {
    helper.kill();
    await helper.end();
    return void 0;
  }
  afterThisTurn(() => void helper.end());
  return userns;
}
function afterThisTurn(fn) {
  const timer = AbortSignal.timeout(0);
  timer.addEventListener("abort", fn, {
    once: true
  });
  return () => timer.removeEventListener("abort", fn);
}
function orAbort(promise, signal) {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, {
      once: true
    });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
var HelperPool;
var init_userns_pool = __esm({
  "lib/userns_pool.ts"() {
    init_userns_helper();
    HelperPool = class {
      /** How many helpers it keeps. */
      capacity;
      #timeout;
      #limit;
      #slots = [];
      #helpers = /* @__PURE__ */ new Set();
      /** Cancels the scheduled fill, if one is. */
      #cancelFill;
      #error;
      #resting = false;
      #starved = false;
      #losses = 0;
      /**
       * Makes a pool and starts filling it.
       *
       * @param capacity How many helpers it keeps.
       * @param timeout Bounds each wait on a helper, in ms.
       * @param limit The bound on helpers alive at once, shared with the gets
       * that spawn their own.
       */
      constructor(capacity, timeout, limit) {
        this.capacity = capacity;
        this.#timeout = timeout;
        this.#limit = limit;
        this.#fill();
      }
      /** How many helpers wait idle in their namespaces now. */
      get idle() {
        let n = 0;
        for (const { helper } of this.#slots) if (helper.entered && !helper.exited) n++;
        return n;
      }
      /**
       * Fills the pool, waiting in line for spawn permits if need be, and
       * settles once every helper in it is idle in its namespace.
       *
       * @throws The error of a helper that could not be spawned or start.
       */
      async ready() {
        this.#wake();
        this.#fill();
        while (this.#slots.length < this.capacity && this.#error === void 0) {
          const release = await this.#limit.acquire();
          if (this.#resting) {
            release();
            break;
          }
          this.#spawn(release);
        }
        if (this.#error !== void 0) throw this.#error;
        await Promise.all(this.#slots.map((slot) => slot.handshake));
      }
      /**
       * Takes a helper out of the pool: an idle one if there is one, else one on
       * its way. The caller calls {@linkcode HelperPool.refill} once done.
       *
       * @returns The slot, now the caller's, or `undefined` if the pool is empty.
       */
      take() {
        this.#wake();
        let index = this.#slots.findIndex(({ helper }) => helper.entered && !helper.exited);
        if (index < 0) index = this.#slots.findIndex(({ helper }) => !helper.entered);
        if (index < 0) return void 0;
        const [slot] = this.#slots.splice(index, 1);
        slot.helper.ref();
        return slot;
      }
      /**
       * Schedules a fill if the pool is short and not resting, on a timer: a
       * spawn blocks the thread for a while, so it runs after the caller's own
       * continuation, not on its critical path.
       */
      refill() {
        if (this.#cancelFill !== void 0 || this.#resting) return;
        if (this.#slots.length >= this.capacity) return;
        this.#cancelFill = afterThisTurn(() => {
          this.#cancelFill = void 0;
          this.#fill();
        });
      }
      /**
       * A spawn permit was given back and nobody waited for it: refills if the
       * pool was short of permits.
       */
      permitFreed() {
        if (this.#starved) this.refill();
      }
      /**
       * Ends every helper still in the pool (an idle one is let go, one on its
       * way is killed) and kills taken ones that are on their way out. All are
       * reaped in the background ({@linkcode HelperPool.settled}). A taken
       * helper that still serves a get is left to it. The pool rests until the
       * next take.
       */
      release() {
        this.#cancelFill?.();
        this.#cancelFill = void 0;
        this.#resting = true;
        const slots = this.#slots;
        this.#slots = [];
        for (const slot of slots) {
          slot.controller.abort();
          if (slot.helper.entered) slot.helper.end();
        }
        for (const helper of this.#helpers) if (helper.ending) helper.kill();
      }
      /**
       * Settles once no helper of this pool is on its way in or out: all are
       * idle in the pool, or reaped.
       */
      async settled() {
        for (; ; ) {
          const busy = [];
          for (const helper of this.#helpers) {
            const slot = this.#slots.find((slot2) => slot2.helper === helper);
            if (slot === void 0) busy.push(helper.gone);
            else if (!helper.entered) busy.push(slot.handshake.catch(() => {
            }));
          }
          if (busy.length === 0) return;
          await Promise.all(busy);
        }
      }
      /** Resumes filling: on a take, or ready(). */
      #wake() {
        this.#resting = false;
        this.#losses = 0;
        this.#error = void 0;
      }
      /** Spawns helpers while the pool is short and permits are free. */
      #fill() {
        this.#starved = false;
        while (!this.#resting && this.#slots.length < this.capacity) {
          const release = this.#limit.tryAcquire();
          if (release === void 0) {
            this.#starved = true;
            return;
          }
          this.#spawn(release);
        }
      }
      #spawn(release) {
        let helper;
        try {
          helper = new Helper({
            pooled: true,
            timeout: this.#timeout,
            onGone: release
          });
        } catch (error) {
          release();
          this.#error = error;
          this.#resting = true;
          return;
        }
        const slot = {
          helper,
          controller: new AbortController(),
          handshake: Promise.resolve()
        };
        slot.handshake = helper.handshake(slot.controller.signal).then(() => {
          if (slot.controller.signal.aborted) return void helper.end();
          try {
            helper.prepare();
          } catch {
          }
        }, async (error) => {
          if (this.#remove(slot)) this.#resting = true;
          helper.kill();
          const end = await helper.end(true);
          throw error instanceof HelperExited ? exitedError(end) : error;
        });
        slot.handshake.catch(() => {
        });
        this.#slots.push(slot);
        this.#helpers.add(helper);
        helper.gone.then(() => this.#helpers.delete(helper));
        helper.status.then(() => this.#lost(slot), () => {
        });
      }
      /**
       * A pooled helper exited. If it was idle in the pool, reap it and replace
       * it, unless more helpers were lost since the last take than the pool
       * holds. One that failed to start is its handshake's to end.
       */
      #lost(slot) {
        if (!slot.helper.entered || !this.#remove(slot)) return;
        slot.helper.end();
        if (++this.#losses > this.capacity) this.#resting = true;
        else this.refill();
      }
      #remove(slot) {
        const index = this.#slots.indexOf(slot);
        if (index < 0) return false;
        this.#slots.splice(index, 1);
        return true;
      }
    };
  }
});

// lib/userns.ts
function peekUserns(handles, mapping) {
  return handles[PEEK](mapping);
}
var DEFAULT_HELPER_TIMEOUT, DEFAULT_MAX_SPAWNS, PEEK, Handles;
var init_userns = __esm({
  "lib/userns.ts"() {
    init_permission_error();
    init_errors();
    init_check();
    init_idmap();
    init_spawn();
    init_spawn_limit();
    init_userns_helper();
    init_userns_pool();
    DEFAULT_HELPER_TIMEOUT = 1e4;
    DEFAULT_MAX_SPAWNS = 8;
    PEEK = Symbol("Handles.peek");
    Handles = class {
      #cache = /* @__PURE__ */ new Map();
      #flights = /* @__PURE__ */ new Map();
      /** What {@linkcode Handles.settled} waits for: every flight until it is over. */
      #unsettled = /* @__PURE__ */ new Set();
      #helperTimeout;
      #limit;
      #pool;
      #generation = 0;
      /**
       * Makes an empty cache; with `prespawn`, starts filling its pool.
       *
       * @param options The pool size, the helper timeout and the spawn limit.
       * @throws {TypeError} For a bad option.
       */
      constructor(options = {}) {
        const { prespawn = 0, helperTimeout = DEFAULT_HELPER_TIMEOUT, maxSpawns = DEFAULT_MAX_SPAWNS } = options;
        if (!Number.isInteger(maxSpawns) || maxSpawns < 1) {
          throw new TypeError(`Invalid maxSpawns: expected a positive integer, got ${describe(maxSpawns)}`);
        }
        if (!Number.isInteger(prespawn) || prespawn < 0) {
          throw new TypeError(`Invalid prespawn: expected a non-negative integer, got ${describe(prespawn)}`);
        }
        if (prespawn > maxSpawns) {
          throw new TypeError(`Invalid prespawn: expected at most maxSpawns (${maxSpawns}), got ${prespawn}`);
        }
        if (!(helperTimeout > 0)) {
          throw new TypeError(`Invalid helperTimeout: expected a positive number of ms, got ${describe(helperTimeout)}`);
        }
        this.#helperTimeout = helperTimeout;
        this.#limit = new SpawnLimit(maxSpawns, () => this.#pool?.permitFreed());
        this.#pool = prespawn > 0 ? new HelperPool(prespawn, helperTimeout, this.#limit) : void 0;
      }
      /** How many user namespaces the cache holds. */
      get size() {
        return this.#cache.size;
      }
      /** How many helpers wait idle in the pool now (0 without `prespawn`). */
      get idle() {
        return this.#pool?.idle ?? 0;
      }
      /**
       * A user namespace with `mapping`: a new close-on-exec fd of it, which the
       * caller closes. A cached mapping costs a lookup and a dup; a new one, a
       * pooled helper or a spawn.
       *
       * @param mapping The uid and gid mappings.
       * @param options An abort signal.
       * @returns A new fd of the namespace.
       * @throws {TypeError} For a bad mapping, before any helper runs.
       * @throws {MountError} If the helper can't be spawned (`unshare` missing:
       * code `ENOENT`), exits early, is not ready in time, or the kernel refuses
       * the map.
       * @throws {Deno.errors.NotCapable} Without `--allow-run=unshare` or
       * `--allow-ffi`, naming the flag, before anything runs.
       * @throws The signal's reason, once aborted.
       */
      get(mapping, options) {
        const signal = options?.signal;
        try {
          signal?.throwIfAborted();
          const key = knownKey(mapping) ?? mappingKey(checkMapping(mapping, "mapping"));
          const cached = this.#cache.get(key);
          if (cached !== void 0) return Promise.resolve(cached.dup());
          let flight = this.#flights.get(key);
          if (flight === void 0) {
            UNSHARE.checkPermission();
            flight = this.#start(key, mapping);
          }
          return this.#join(flight, signal).catch((error) => Promise.reject(PermissionError.in(error, "Handles.get")));
        } catch (error) {
          return Promise.reject(PermissionError.in(error, "Handles.get"));
        }
      }
      /**
       * Fills the pool, and settles once every helper in it is ready: for a
       * runtime that starts its pool early. Resolves at once without a pool.
       *
       * @throws {MountError} If a helper can't be spawned or exits early, as
       * {@linkcode Handles.get} would throw.
       */
      async ready() {
        await this.#pool?.ready();
      }
      /**
       * Settles once no helper of this cache is starting, being mapped, or on
       * its way out: each is reaped, or idle in the pool. Pooled gets resolve
       * before their helper exits; this waits for those exits.
       */
      async settled() {
        while (this.#unsettled.size > 0) await Promise.all(this.#unsettled);
        await this.#pool?.settled();
      }
      /**
       * Closes the cached namespaces and ends the helpers waiting in the pool,
       * or on their way out of it. Fds returned earlier stay valid, and the
       * cache stays usable (the pool refills on the next new mapping); helpers
       * in flight still serve their waiters. Helpers are reaped in the
       * background: `await using`, or {@linkcode Handles.settled}, waits for
       * them.
       */
      release() {
        this.#generation++;
        this.#flights.clear();
        for (const fd of this.#cache.values()) fd.close();
        this.#cache.clear();
        this.#pool?.release();
      }
      /** Releases the cache; for `using`. */
      [Symbol.dispose]() {
        this.release();
      }
      /**
       * Releases the cache, and settles once every helper it started, pooled or
       * in flight, has been reaped; for `await using`.
       */
      async [Symbol.asyncDispose]() {
        this.release();
        await this.settled();
      }
      /**
       * Shows what the cache holds, for `console.log`.
       *
       * @param inspect Deno's inspect function.
       * @param options Its options.
       * @returns Such as `Handles { namespaces: 2, inFlight: 0, idle: 0 }`.
       */
      [Symbol.for("Deno.customInspect")](inspect, options) {
        const state = {
          namespaces: this.#cache.size,
          inFlight: this.#flights.size,
          idle: this.idle
        };
        return `Handles ${inspect(state, options)}`;
      }
      /**
       * The cached namespace of a checked mapping, itself: for
       * {@linkcode peekUserns}.
       *
       * @param mapping A checked mapping.
       * @returns The cached fd, or `undefined`.
       */
      [PEEK](mapping) {
        return this.#cache.get(mappingKey(mapping));
      }
      #start(key, mapping) {
        const copy = {
          uidMappings: mapping.uidMappings.map((m) => ({
            ...m
          })),
          gidMappings: mapping.gidMappings.map((m) => ({
            ...m
          }))
        };
        const flight = {
          key,
          waiters: /* @__PURE__ */ new Set(),
          controller: new AbortController(),
          generation: this.#generation,
          settled: Promise.resolve()
        };
        const settled = this.#create(copy, flight.controller.signal).then((base) => this.#land(flight, base), (error) => {
          this.#leave(flight);
          for (const waiter of flight.waiters) waiter.reject(error);
        }).finally(() => {
          if (flight.generation === this.#generation) this.#pool?.refill();
        });
        flight.settled = settled;
        this.#flights.set(key, flight);
        this.#unsettled.add(settled);
        settled.then(() => this.#unsettled.delete(settled));
        return flight;
      }
      /**
       * A namespace from a pooled helper, or else from a new one: also when the
       * pooled one fails, so that an error always comes from a fresh helper, and
       * a refused mapping does not use up the pool.
       */
      async #create(mapping, signal) {
        const slot = this.#pool?.take();
        if (slot !== void 0) {
          const userns = await useSlot(slot, mapping, signal);
          if (userns !== void 0) return userns;
        }
        return await createUserns(mapping, signal, this.#helperTimeout, this.#limit);
      }
      /** Answers a flight's waiters with dups of its namespace, and caches it. */
      #land(flight, base) {
        this.#leave(flight);
        if (flight.controller.signal.aborted) return base.close();
        for (const waiter of flight.waiters) {
          let fd;
          try {
            fd = base.dup();
          } catch (error) {
            waiter.reject(error);
            continue;
          }
          waiter.resolve(fd);
        }
        if (flight.generation === this.#generation && !this.#cache.has(flight.key)) {
          this.#cache.set(flight.key, base);
        } else {
          base.close();
        }
      }
      /** Takes a flight out of the map, so that no later get joins it. */
      #leave(flight) {
        if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
      }
      /**
       * Waits on a flight. An abort ends this wait at once; the last waiter to
       * abort also takes the flight out, aborts it, and answers once its helper
       * is reaped.
       */
      #join(flight, signal) {
        return new Promise((resolve, reject) => {
          if (signal === void 0) {
            flight.waiters.add({
              resolve,
              reject
            });
            return;
          }
          const onAbort = () => {
            if (!flight.waiters.delete(waiter)) return;
            if (flight.waiters.size > 0) return reject(signal.reason);
            this.#leave(flight);
            flight.controller.abort(signal.reason);
            flight.settled.then(() => reject(signal.reason));
          };
          const waiter = {
            resolve(fd) {
              signal.removeEventListener("abort", onAbort);
              resolve(fd);
            },
            reject(error) {
              signal.removeEventListener("abort", onAbort);
              reject(error);
            }
          };
          flight.waiters.add(waiter);
          signal.addEventListener("abort", onAbort, {
            once: true
          });
        });
      }
    };
  }
});

// lib/mount_fd.ts
var mount_fd_exports = {};
__export(mount_fd_exports, {
  MountSource: () => MountSource,
  assertBindMount: () => assertBindMount,
  finishSource: () => finishSource,
  makeSource: () => makeSource,
  mountFd: () => mountFd,
  needsTree: () => needsTree,
  openSourceFd: () => openSourceFd
});
function mountFd(mount, options) {
  try {
    if (isBareBind(mount)) {
      options?.signal?.throwIfAborted();
      return Promise.resolve(new MountSource("plain-open", open(mount.source, O_PATH), mount));
    }
    assertMount(mount);
    options?.signal?.throwIfAborted();
    assertBindMount(mount);
    if (!needsTree(mount)) {
      return Promise.resolve(new MountSource("plain-open", openSourceFd(mount, false), mount));
    }
    const source = makeSource(mount, options ?? NO_OPTIONS, true);
    return source.catch((error) => Promise.reject(explainMountFd(error, mount)));
  } catch (error) {
    return Promise.reject(explainMountFd(error, mount));
  }
}
function explainMountFd(error, mount) {
  return PermissionError.in(explainSourceError(error, mount), "mountFd");
}
function makeSource(mount, options, tree) {
  const idMapping = mount.idMapping;
  const cached = cachedUserns(mount, options);
  if (idMapping != null && idMapping.usernsPath === void 0 && cached === void 0) {
    libc("open_tree");
    UNSHARE.checkPermission();
  }
  const type = tree ? "open_tree" : "plain-open";
  const source = new MountSource(type, openSourceFd(mount, tree), mount);
  return tree ? finishSource(source, options, cached) : source;
}
function cachedUserns(mount, options) {
  const idMapping = mount.idMapping;
  if (idMapping == null || idMapping.usernsPath !== void 0 || options.handles === void 0) {
    return void 0;
  }
  return peekUserns(options.handles, idMapping);
}
function assertBindMount(mount) {
  assertBind(mount);
  const refused = mount.flags & REFUSED_BIND_FLAGS;
  if (refused === 0) return;
  throw new MountError("mountFd", {
    source: mount.source,
    target: mount.destination,
    detail: `a bind mount can't carry ${stringifyMountFlags(refused)}: a bind mount shares its filesystem, whose own flags are set where it is mounted`
  });
}
function wantsFlags(mount) {
  return (mount.flags & BIND_REMOUNT_FLAGS) !== 0 || (mount.clearedFlags ?? 0) !== 0;
}
function needsTree(mount) {
  return mount.idMapping != null || mount.recAttr !== void 0 || wantsFlags(mount);
}
function openSourceFd(mount, tree) {
  if (!tree) return open(mount.source, O_PATH);
  const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (mount.flags & MS_REC ? AT_RECURSIVE : 0);
  return openTree(AT_FDCWD, mount.source, flags);
}
async function finishSource(source, options, cached = cachedUserns(source.mount, options)) {
  if (source.type === "plain-open") return source;
  const { mount } = source;
  const names = {
    source: mount.source,
    target: mount.destination
  };
  try {
    options.signal?.throwIfAborted();
    const idMapping = mount.idMapping;
    if (idMapping != null) {
      if (cached !== void 0) {
        setIDMap(source.fd, cached, idMapping.recursive === true, mount.source);
      } else {
        using userns = await openUserns(idMapping, options);
        options.signal?.throwIfAborted();
        setIDMap(source.fd, userns, idMapping.recursive === true, mount.source);
      }
    }
    if (wantsFlags(mount)) setFlags(source.fd, mount, names);
    const attr = mount.recAttr;
    if (attr !== void 0 && (attr.attrSet !== 0 || attr.attrClr !== 0)) {
      mountSetattr(source.fd, "", AT_EMPTY_PATH | AT_RECURSIVE, recAttrChange(attr), {
        ...names,
        op: "mount_setattr(AT_RECURSIVE)"
      });
    }
    return source;
  } catch (error) {
    source.close();
    throw error;
  }
}
async function openUserns(idMapping, options) {
  const path = idMapping.usernsPath;
  if (path !== void 0) return openNamespaceFile(path, "user");
  const mapping = {
    uidMappings: idMapping.uidMappings,
    gidMappings: idMapping.gidMappings
  };
  if (options.handles !== void 0) {
    return await options.handles.get(mapping, {
      signal: options.signal
    });
  }
  using handles = new Handles();
  return await handles.get(mapping, {
    signal: options.signal
  });
}
function setIDMap(tree, userns, recursive, source) {
  mountSetattr(tree, "", recursive ? AT_EMPTY_PATH | AT_RECURSIVE : AT_EMPTY_PATH, {
    attrSet: MOUNT_ATTR_IDMAP,
    usernsFd: userns.fd
  }, {
    source
  });
}
function setFlags(tree, mount, names) {
  const apply = (flags) => setAttr(tree, flagsToAttr(flags), names);
  try {
    apply(mount.flags);
    return;
  } catch (error) {
    if (!(error instanceof MountError) || error.code !== "EPERM") throw error;
    const source = statfsToMountFlags(fstatfsFlags(tree, names));
    const refuse = (hint) => error.withHint(hint);
    const cannotClear = source & (mount.clearedFlags ?? 0) & LOCK_FLAGS;
    if (cannotClear !== 0) {
      throw refuse(`(cannot clear locked flags ${stringifyMountFlags(cannotClear)})`);
    }
    const atime = mount.flags & ATIME_FLAGS;
    if (atime !== 0 && atime !== (source & ATIME_FLAGS)) {
      throw refuse(`(cannot change locked atime flags ${stringifyMountFlags(source & ATIME_FLAGS)})`);
    }
    const locked = source & LOCK_FLAGS;
    try {
      apply(mount.flags | locked);
    } catch (retry) {
      if (!(retry instanceof MountError)) throw retry;
      throw retry.withHint(`(with the locked flags ${stringifyMountFlags(locked)} re-applied)`);
    }
  }
}
function setAttr(tree, change, names) {
  const op = "mount_setattr";
  try {
    mountSetattr(tree, "", AT_EMPTY_PATH, change, {
      ...names,
      op
    });
  } catch (error) {
    const clearsNosymfollow = (change.attrClr & MOUNT_ATTR_NOSYMFOLLOW) !== 0;
    if (!(error instanceof MountError) || error.code !== "EINVAL" || !clearsNosymfollow) {
      throw error;
    }
    mountSetattr(tree, "", AT_EMPTY_PATH, {
      attrSet: change.attrSet,
      attrClr: change.attrClr & ~MOUNT_ATTR_NOSYMFOLLOW
    }, {
      ...names,
      op
    });
  }
}
var MountSource, NO_OPTIONS;
var init_mount_fd = __esm({
  "lib/mount_fd.ts"() {
    init_constants();
    init_mount_error();
    init_libc();
    init_permission_error();
    init_syscalls();
    init_check();
    init_fd();
    init_hints();
    init_flags();
    init_namespace_file();
    init_spawn();
    init_userns();
    MountSource = class extends OwnedFd {
      /** `"plain-open"` for a bare bind, `"open_tree"` for anything more. */
      type;
      /** The mount it was made from. */
      mount;
      /**
       * The mount namespace the fd was opened in, as `mnt:[N]`, when it is not
       * the caller's: a `"plain-open"` source attaches only there.
       */
      namespace;
      /**
       * Wraps an fd that this object now owns.
       *
       * @param type The kind of fd.
       * @param fd The fd.
       * @param mount The mount it was made from.
       * @param namespace The mount namespace it was opened in, if not the caller's.
       */
      constructor(type, fd, mount, namespace) {
        super(fd);
        this.type = type;
        this.mount = mount;
        this.namespace = namespace;
      }
      /**
       * Shows the type, fd and source, for `console.log`.
       *
       * @param inspect Deno's inspect function.
       * @param options Its options.
       * @returns Such as `MountSource { type: "open_tree", fd: 21, source: "/srv/data" }`.
       */
      [Symbol.for("Deno.customInspect")](inspect, options) {
        const fd = this.closed ? {
          closed: true
        } : {
          fd: this.fd
        };
        const { source, destination } = this.mount;
        return `MountSource ${inspect({
          type: this.type,
          ...fd,
          source,
          destination
        }, options)}`;
      }
    };
    NO_OPTIONS = Object.freeze({});
  }
});

// lib/target.ts
function assertTarget(target, field = "target") {
  if (typeof target === "string") return assertPath(target, field);
  if (typeof target !== "object" || target === null) {
    throw new TypeError(`Invalid ${field}: expected a path or { root, path }, got ${describe(target)}`);
  }
  const { root, path } = target;
  if (root instanceof OwnedFd) {
    if (root.closed) throw new TypeError(`Invalid ${field}.root: the fd is closed`);
  } else {
    assertPath(root, `${field}.root`);
  }
  assertPath(path, `${field}.path`);
}
function targetName(target) {
  if (typeof target === "string") return target;
  const root = typeof target.root === "string" ? target.root : `fd ${target.root.fd}`;
  return `${root}:${target.path.startsWith("/") ? "" : "/"}${target.path}`;
}
function openTarget(target, options = {}) {
  try {
    if (typeof target === "string") {
      return new OwnedFd(open(target, O_PATH | (options.noFollow ? O_NOFOLLOW : 0)));
    }
    const root = target.root;
    if (typeof root !== "string") return openInRoot(root.fd, target.path, options);
    using rootFd = new OwnedFd(open(root, O_PATH | O_DIRECTORY));
    return openInRoot(rootFd.fd, target.path, options);
  } catch (error) {
    if (!(error instanceof MountError)) throw error;
    throw error.withNames({
      source: options.source,
      target: targetName(target)
    });
  }
}
function openInRoot(rootFd, path, options = {}) {
  try {
    return new OwnedFd(resolveInRoot(rootFd, path, options.noFollow === true));
  } catch (error) {
    if (options.create === void 0 || !isErrno(error, "ENOENT")) throw error;
  }
  return new OwnedFd(createInRoot(rootFd, path, options.create));
}
function components(path) {
  return path.split("/").filter((name) => name !== "" && name !== ".");
}
function isErrno(error, code) {
  return error instanceof MountError && error.code === code;
}
function resolveInRoot(rootFd, path, noFollow) {
  const flags = O_PATH | (noFollow ? O_NOFOLLOW : 0);
  for (let retry = 0; ; retry++) {
    try {
      return openat2(rootFd, path || ".", flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    } catch (error) {
      if (isErrno(error, "ENOSYS") || isErrno(error, "EPERM")) break;
      if (!isErrno(error, "EAGAIN") || retry >= MAX_RETRIES) throw error;
    }
  }
  return walkInRoot(rootFd, path, noFollow);
}
function walkError(code, path, detail) {
  return new MountError("openat", {
    errno: errnoValue(code),
    target: path,
    detail
  });
}
function walkInRoot(rootFd, path, noFollow) {
  const stack = [
    dupCloexec(rootFd)
  ];
  const pending = components(path).reverse();
  let links = 0;
  try {
    while (pending.length > 0) {
      const entry = pending.pop();
      if (entry === "..") {
        if (stack.length > 1) close(stack.pop());
        continue;
      }
      const dir = stack[stack.length - 1];
      const fd = openAt(dir, entry, O_PATH | O_NOFOLLOW);
      let type;
      try {
        type = fileInfo(fd, "", AT_EMPTY_PATH).mode & S_IFMT;
      } catch (error) {
        close(fd);
        throw error;
      }
      const last = pending.length === 0;
      if (type === S_IFLNK && !(last && noFollow)) {
        let link;
        try {
          if (++links > MAX_LINKS) {
            throw walkError("ELOOP", path, "too many levels of symbolic links");
          }
          if (fstatfsType(dir) === PROC_SUPER_MAGIC) {
            throw walkError("ELOOP", path, `refusing to follow a symbolic link on procfs: ${entry}`);
          }
          link = readlinkAt(fd, "");
        } finally {
          close(fd);
        }
        if (link.startsWith("/")) {
          while (stack.length > 1) close(stack.pop());
        }
        pending.push(...components(link).reverse());
        continue;
      }
      if (!last && type !== S_IFDIR) {
        close(fd);
        throw walkError("ENOTDIR", path, `not a directory: ${entry}`);
      }
      stack.push(fd);
    }
    return stack.pop();
  } finally {
    for (const fd of stack) close(fd);
  }
}
function createInRoot(rootFd, path, kind) {
  const names = components(path);
  if (names.length === 0) return dupCloexec(rootFd);
  let parent = dupCloexec(rootFd);
  try {
    for (let i = 0; i < names.length; i++) {
      const prefix = names.slice(0, i + 1).join("/");
      let fd;
      try {
        fd = resolveInRoot(rootFd, prefix, false);
      } catch (error) {
        if (!isErrno(error, "ENOENT") || names[i] === "..") throw error;
        const directory = i < names.length - 1 || kind() === "directory";
        fd = createEntry(parent, names[i], directory, () => resolveInRoot(rootFd, prefix, false));
      }
      close(parent);
      parent = fd;
    }
    const result = parent;
    parent = -1;
    return result;
  } finally {
    if (parent >= 0) close(parent);
  }
}
function createEntry(dir, name, directory, resolve) {
  try {
    if (directory) {
      mkdirat(dir, name, 493);
    } else {
      close(openAt(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 420));
    }
  } catch (error) {
    if (isErrno(error, "EEXIST")) return resolve();
    throw error;
  }
  return openAt(dir, name, O_PATH | O_NOFOLLOW | (directory ? O_DIRECTORY : 0));
}
var MAX_LINKS, MAX_RETRIES;
var init_target = __esm({
  "lib/target.ts"() {
    init_constants();
    init_errno();
    init_mount_error();
    init_syscalls();
    init_errors();
    init_fd();
    MAX_LINKS = 40;
    MAX_RETRIES = 32;
  }
});

// lib/attach.ts
var attach_exports = {};
__export(attach_exports, {
  assertAttach: () => assertAttach,
  assertAttachOptions: () => assertAttachOptions,
  attach: () => attach,
  attachMountSource: () => attachMountSource,
  unmountFd: () => unmountFd
});
function attachMountSource(source, target, options = {}) {
  assertAttach(source, target, options);
  try {
    attach(source, target, options, {});
  } catch (error) {
    throw PermissionError.in(error, "attachMountSource");
  }
}
function assertAttach(source, target, options) {
  if (!(source instanceof MountSource)) {
    throw new TypeError(`Invalid source: expected a MountSource from mountFd, got ${describe(source)}`);
  }
  assertTarget(target);
  assertAttachOptions(options, target);
  if (source.closed) throw new TypeError("Cannot attach a closed mount source");
}
function assertAttachOptions(options, target) {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options: expected an object, got ${describe(options)}`);
  }
  const { create } = options;
  if (create === void 0 || create === false) return;
  if (create !== true) {
    throw new TypeError(`Invalid options.create: expected a boolean, got ${describe(create)}`);
  }
  if (typeof target === "string") {
    throw new TypeError("Invalid options.create: a mount point is created only inside a root: pass the target as { root, path }");
  }
}
function attach(source, target, options, thread) {
  const { mount } = source;
  const names = {
    source: mount.source,
    target: targetName(target)
  };
  const clone = source.type === "plain-open" ? cloneTree(source, names) : void 0;
  try {
    const tree = clone?.fd ?? source.fd;
    const create = options.create ? () => kindOf(tree) : void 0;
    const targetFd = openTarget(target, {
      create,
      source: mount.source
    });
    try {
      moveMount(tree, "", targetFd.fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH, names);
    } catch (error) {
      throw explainAttach(error, tree, targetFd.fd, target, thread);
    } finally {
      targetFd.close();
    }
    try {
      setPropagation(tree, mount, names);
    } catch (error) {
      throw undo(error, tree, thread, names.target);
    }
  } finally {
    clone?.close();
  }
}
function cloneTree(source, names) {
  const recursive = source.mount.flags & MS_REC ? AT_RECURSIVE : 0;
  try {
    return new OwnedFd(openTree(source.fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | recursive));
  } catch (error) {
    if (!(error instanceof MountError) || error.code !== "EINVAL") throw error;
    throw error.withHint(`(a plain-open source attaches only in the mount namespace it was opened in (${source.namespace ?? "the caller's"}): make it an open_tree source, or attach it there)`, names);
  }
}
function kindOf(tree) {
  return (fileInfo(tree).mode & S_IFMT) === S_IFDIR ? "directory" : "file";
}
function setPropagation(tree, mount, names) {
  if (mount.flags & PROPAGATION_FLAGS) {
    propagate(tree, mount.flags & (PROPAGATION_FLAGS | MS_REC), names);
  }
  if (mount.propagationFlags !== void 0) {
    for (const flag of mount.propagationFlags) propagate(tree, flag, names);
  }
  if (mount.recAttr?.propagation) propagate(tree, mount.recAttr.propagation | MS_REC, names);
}
function propagate(tree, flag, names) {
  const type = flag & PROPAGATION_FLAGS;
  mountSetattr(tree, "", flag & MS_REC ? AT_EMPTY_PATH | AT_RECURSIVE : AT_EMPTY_PATH, {
    attrSet: 0,
    propagation: type
  }, {
    ...names,
    op: `mount_setattr(${stringifyMountFlags(flag & (type | MS_REC))})`
  });
}
function undo(error, tree, thread, target) {
  try {
    unmountFd(tree, MNT_DETACH, thread, void 0, target);
  } catch (undoError) {
    if (error instanceof Error) {
      error.message += ` (and detaching it again failed: ${undoError instanceof Error ? undoError.message : String(undoError)})`;
    }
  }
  return error;
}
function unmountFd(fd, flags, thread, name, target) {
  const path = name === void 0 ? `self/fd/${fd}` : `self/fd/${fd}/${name}`;
  const nofollow = name === void 0 ? 0 : UMOUNT_NOFOLLOW;
  try {
    if (thread.procFd === void 0) return umount2(`/proc/${path}`, flags | nofollow);
    fchdir(thread.procFd, "/proc");
    try {
      umount2(path, flags | nofollow);
    } finally {
      chdir("/");
    }
  } catch (error) {
    if (!(error instanceof MountError) || target === void 0) throw error;
    throw error.withNames({
      target
    });
  }
}
function explainAttach(error, tree, targetFd, target, thread) {
  if (!(error instanceof MountError) || error.code !== "EINVAL") return error;
  const hint = (hint2) => error.withHint(hint2);
  let kinds;
  try {
    kinds = [
      kindOf(tree),
      kindOf(targetFd)
    ];
  } catch {
    return error;
  }
  if (kinds[0] !== kinds[1]) {
    return hint(`(the source is a ${kinds[0]} and the target a ${kinds[1]}: they must match)`);
  }
  if (thread.procFd !== void 0) return error;
  let ours;
  try {
    const id = fileInfo(targetFd).mountId;
    ours = readText("/proc/thread-self/mountinfo").split("\n").some((line) => line.startsWith(`${id} `));
  } catch {
    return error;
  }
  if (ours) return error;
  const path = typeof target === "string" ? target : String(target.root);
  const pid = PROC_ROOT.exec(path)?.[1] ?? "PID";
  return hint(`(the target is in another mount namespace, where the kernel attaches nothing from here; join it: openMountNamespace("/proc/${pid}/ns/mnt"), then its mountInto or attach with the target { root: "/", path })`);
}
var PROC_ROOT;
var init_attach = __esm({
  "lib/attach.ts"() {
    init_constants();
    init_mount_error();
    init_permission_error();
    init_syscalls();
    init_errors();
    init_fd();
    init_flags();
    init_mount_fd();
    init_target();
    PROC_ROOT = /^\/proc\/(\d+|self|thread-self)\/root(\/|$)/;
  }
});

// examples/mount_idmapped.ts
init_constants();
var USAGE = `Usage: mount-idmapped --map-mount=<idmap> [--map-mount=<idmap>]... [--recursive] <source> <target>

Create an id-mapped mount of <source> at <target>, in this mount namespace.

Options:
  --map-mount=<type>:<from>:<to>:<range>
        Map ids <from>..<from>+<range>-1 on disk to <to>..<to>+<range>-1
        through the mount. <type> is "b" or "both" (uids and gids), "u" or
        "uid", "g" or "gid". Repeatable, up to 340 ranges of each kind; uids
        and gids both need at least one.
  --map-mount=/proc/<pid>/ns/user
        Use the mapping of that user namespace.
  --recursive
        Mount the whole tree below <source> (rbind), and id-map all of it.
  -h, --help
        Show this help.

Examples:
  mount-idmapped --map-mount=b:0:10000:10000 /source /target
  mount-idmapped --map-mount=u:0:10000:10000 --map-mount=g:0:20000:20000 /source /target
  mount-idmapped --map-mount=/proc/1234/ns/user --recursive /source /target

Exit status: 0 mounted, 1 the mount failed, 2 bad usage.`;
var UsageError = class extends Error {
};
var HELP = "see mount-idmapped --help";
var RANGE = /^(b|both|u|uid|g|gid):(\d+):(\d+):(\d+)$/;
function readOptions(args) {
  const options = {
    maps: [],
    recursive: false,
    help: false,
    positionals: []
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      options.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      options.positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const name = arg.startsWith("--") && equals > 0 ? arg.slice(0, equals) : arg;
    const value = name === arg ? void 0 : arg.slice(equals + 1);
    switch (name) {
      case "--map-mount":
        if (value !== void 0) {
          options.maps.push(value);
        } else if (i + 1 < args.length) {
          options.maps.push(args[++i]);
        } else {
          throw new UsageError(`option --map-mount needs a value: ${HELP}`);
        }
        break;
      case "--recursive":
      case "--help":
      case "-h":
        if (value !== void 0) throw new UsageError(`option ${name} takes no value: ${HELP}`);
        if (name === "--recursive") options.recursive = true;
        else options.help = true;
        break;
      default:
        throw new UsageError(`unknown option ${JSON.stringify(name)}: ${HELP}`);
    }
  }
  return options;
}
function absolute(path) {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}
function parseCommandLine(args) {
  const { maps, recursive, help, positionals } = readOptions(args);
  if (help) return "help";
  if (positionals.length !== 2) {
    throw new UsageError(`expected <source> and <target>, got ${positionals.length} argument(s): ${HELP}`);
  }
  if (maps.length === 0) throw new UsageError(`at least one --map-mount is needed: ${HELP}`);
  const [source, target] = positionals;
  const mount = {
    source,
    destination: absolute(target),
    flags: recursive ? MS_BIND | MS_REC : MS_BIND
  };
  const paths = maps.filter((map) => map.startsWith("/"));
  if (paths.length > 0) {
    if (maps.length > 1) {
      throw new UsageError("a user namespace path can't be combined with other --map-mount");
    }
    mount.idMapping = {
      recursive,
      usernsPath: paths[0]
    };
    return mount;
  }
  const uidMappings = [];
  const gidMappings = [];
  for (const map of maps) {
    const match = RANGE.exec(map);
    if (!match) {
      throw new UsageError(`invalid --map-mount ${JSON.stringify(map)}: expected <b|u|g>:<from>:<to>:<range> or /proc/<pid>/ns/user`);
    }
    const [type, from, to, range] = [
      match[1][0],
      ...match.slice(2).map(Number)
    ];
    const entry = {
      containerID: from,
      hostID: to,
      size: range
    };
    if (type !== "g") uidMappings.push(entry);
    if (type !== "u") gidMappings.push({
      ...entry
    });
  }
  if (uidMappings.length === 0 || gidMappings.length === 0) {
    throw new UsageError(`no ${uidMappings.length === 0 ? "uid" : "gid"} mappings: add a --map-mount=${uidMappings.length === 0 ? "u" : "g"}:... or use b:...`);
  }
  mount.idMapping = {
    recursive,
    uidMappings,
    gidMappings
  };
  return mount;
}
async function loadMounting() {
  const [validate, source, attach2, errors] = await Promise.all([
    Promise.resolve().then(() => (init_validate(), validate_exports)),
    Promise.resolve().then(() => (init_mount_fd(), mount_fd_exports)),
    Promise.resolve().then(() => (init_attach(), attach_exports)),
    Promise.resolve().then(() => (init_errors(), errors_exports))
  ]);
  return {
    validateMount: validate.validateMount,
    mountFd: source.mountFd,
    attachMountSource: attach2.attachMountSource,
    MountError: errors.MountError
  };
}
async function main(args) {
  let mountError;
  try {
    const mount = parseCommandLine(args);
    if (mount === "help") {
      console.log(USAGE);
      return 0;
    }
    const lib = await loadMounting();
    mountError = lib.MountError;
    lib.validateMount(mount);
    using source = await lib.mountFd(mount);
    lib.attachMountSource(source, mount.destination);
    return 0;
  } catch (error) {
    const failed = mountError !== void 0 && error instanceof mountError;
    const usage = error instanceof UsageError || error instanceof TypeError || failed && error.op === "validate";
    console.error(`mount-idmapped: ${error.message}`);
    if (!usage && !failed && !(error instanceof Deno.errors.NotCapable)) throw error;
    return usage ? 2 : 1;
  }
}
if (import.meta.main) Deno.exit(await main(Deno.args));
export {
  main,
  parseCommandLine
};
