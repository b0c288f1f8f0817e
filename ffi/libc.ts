/**
 * The libc symbol table: the one place that calls `Deno.dlopen`.
 *
 * libc is opened once, at module load when `--allow-ffi` is already granted,
 * or else on first use. A missing permission becomes a clear error naming the
 * flag and the call that needed it. The calls that glibc may not wrap (the
 * new mount API, `statx`) and those it never wraps (`openat2`) are bound once,
 * at load, to glibc's wrapper or to `syscall(2)`: the wrappers in
 * `syscalls.ts` call one function either way.
 *
 * @module
 */

import { PermissionError } from "./permission_error.ts";

/**
 * Every libc symbol this module calls, with its C signature. No errno-setting
 * symbol is `nonblocking`: errno is read on the thread that made the call.
 */
export const SYMBOLS = {
  // int open(const char *path, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int openat(int dirfd, const char *path, int flags, mode_t mode);
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int fcntl(int fd, int cmd, int arg);
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request);
  ioctl: { parameters: ["i32", "u64"], result: "i32" },
  // int umount2(const char *target, int flags);
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // int unshare(int flags);
  unshare: { parameters: ["i32"], result: "i32" },
  // int setns(int fd, int nstype);
  setns: { parameters: ["i32", "i32"], result: "i32" },
  // int chdir(const char *path);
  chdir: { parameters: ["buffer"], result: "i32" },
  // int fchdir(int fd);
  fchdir: { parameters: ["i32"], result: "i32" },
  // int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags);
  fchownat: { parameters: ["i32", "buffer", "u32", "u32", "i32"], result: "i32" },
  // int mkdirat(int dirfd, const char *path, mode_t mode);
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size);
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  // int fstatfs(int fd, struct statfs *buf);
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },

  // glibc >= 2.28: int statx(int dirfd, const char *path, int flags,
  //                          unsigned int mask, struct statx *buf);
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32", optional: true },
  // glibc >= 2.36: int open_tree(int dirfd, const char *path, unsigned int flags);
  open_tree: { parameters: ["i32", "buffer", "u32"], result: "i32", optional: true },
  // glibc >= 2.36: int move_mount(int from_dirfd, const char *from_path,
  //                               int to_dirfd, const char *to_path, unsigned int flags);
  move_mount: {
    parameters: ["i32", "buffer", "i32", "buffer", "u32"],
    result: "i32",
    optional: true,
  },
  // glibc >= 2.36: int mount_setattr(int dirfd, const char *path, unsigned int flags,
  //                                  struct mount_attr *attr, size_t size);
  mount_setattr: {
    parameters: ["i32", "buffer", "u32", "buffer", "usize"],
    result: "i32",
    optional: true,
  },

  // The Unix-socket calls (ffi/socket.ts) and what the mount broker needs
  // beside them: bound on first use (SOCKET below), not at every import.
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int bind(int fd, const struct sockaddr *addr, socklen_t len);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int fd, int backlog);
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int connect(int fd, const struct sockaddr *addr, socklen_t len);
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int shutdown(int fd, int how);
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // ssize_t sendmsg(int fd, const struct msghdr *msg, int flags);
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // int getsockopt(int fd, int level, int name, void *value, socklen_t *len);
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *arg);
  ioctl_arg: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t n, int timeout): on another thread, so
  // errno is lost; only the result is used (a ready count, 0, or -1).
  poll_wait: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },

  // long syscall(long number, ...): one entry per call made through it.
  // syscall(SYS_statx, int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
  syscall_statx: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "i32", "u32", "buffer"],
    result: "i64",
  },
  // syscall(SYS_open_tree, int dirfd, const char *path, unsigned int flags)
  syscall_open_tree: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "u32"],
    result: "i64",
  },
  // syscall(SYS_move_mount, int from_dirfd, const char *from_path, int to_dirfd,
  //         const char *to_path, unsigned int flags)
  syscall_move_mount: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "i32", "buffer", "u32"],
    result: "i64",
  },
  // syscall(SYS_mount_setattr, int dirfd, const char *path, unsigned int flags,
  //         struct mount_attr *attr, size_t size)
  syscall_mount_setattr: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "u32", "buffer", "usize"],
    result: "i64",
  },
  // syscall(SYS_openat2, int dirfd, const char *path, struct open_how *how, size_t size)
  syscall_openat2: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "buffer", "usize"],
    result: "i64",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The symbols as `Deno.dlopen` loads them: the optional ones may be `null`. */
export type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The calls a glibc older than 2.36 does not wrap. */
const BOUND = ["statx", "open_tree", "move_mount", "mount_setattr"] as const;
type Bound = typeof BOUND[number];

/** The `syscall(2)` entries that stand in for them. */
type Fallback = `syscall_${Bound}`;
const FALLBACKS: readonly Fallback[] = BOUND.map((name) => `syscall_${name}` as const);

/** The Unix-socket calls, bound on their first use: most importers never call them. */
const SOCKET = [
  "socket",
  "socketpair",
  "bind",
  "listen",
  "accept4",
  "connect",
  "shutdown",
  "sendmsg",
  "recvmsg",
  "getsockopt",
  "ioctl_arg",
  "poll_wait",
] as const;
type Socket = typeof SOCKET[number];

/** The symbols of the table the wrappers call: all but the socket calls. */
export type Core = Omit<Symbols, Socket>;

/** The socket calls as `socketSymbols` gives them. */
export type SocketSymbols = Pick<Symbols, Socket>;

/**
 * The symbols bound at load: all but the stand-ins, which a glibc with its
 * wrappers never calls, and the socket calls (binding a symbol costs Deno 0.1
 * to 0.3 ms).
 */
type Loaded = Omit<Symbols, Fallback | Socket> & Partial<Pick<Symbols, Fallback>>;
type Main = Omit<typeof SYMBOLS, Fallback | Socket>;
const LATER: readonly string[] = [...FALLBACKS, ...SOCKET];
const MAIN: Main = Object.fromEntries(
  Object.entries(SYMBOLS).filter(([name]) => !LATER.includes(name)),
) as Main;

/**
 * The table the wrappers call: libc's symbols, with `statx`, `open_tree`,
 * `move_mount`, `mount_setattr` and `openat2` bound to glibc's wrapper where
 * it has one, and to `syscall(2)` where it has not. Each returns -1 and sets
 * errno on failure, as the C call does.
 */
export type Libc =
  & Omit<Symbols, Bound | `syscall_${string}` | Socket>
  & { [K in Bound]: NonNullable<Symbols[K]> }
  & {
    /** openat2(2): `int openat2(int dirfd, const char *path, struct open_how *how, size_t size)`. */
    openat2(dirfd: number, path: BufferSource, how: BufferSource, size: bigint): number;
  };

// Syscall numbers. Those of the new mount API and openat2 are equal on
// x86_64 and aarch64; statx's are not.
const SYS_open_tree = 428n;
const SYS_move_mount = 429n;
const SYS_openat2 = 437n;
const SYS_mount_setattr = 442n;
const SYS_statx = Deno.build.arch === "aarch64" ? 291n : 332n;

/** The architectures whose Linux ABI the constants and syscall numbers are for. */
const ARCHES: readonly string[] = ["x86_64", "aarch64"];

/**
 * Checks that this module knows the Linux ABI of `arch`: the values of
 * `O_DIRECTORY`, `O_NOFOLLOW` and the syscall numbers differ between
 * architectures.
 *
 * @param arch The architecture (default: the one Deno runs on).
 * @throws {Error} On an architecture other than x86_64 and aarch64.
 */
export function assertSupportedArch(arch: string = Deno.build.arch): void {
  if (!ARCHES.includes(arch)) {
    throw new Error(
      `Unsupported architecture: ${arch} (the constants and syscall numbers are those of ${
        ARCHES.join(" and ")
      })`,
    );
  }
}

/**
 * Binds the calls glibc may not wrap, once: its wrapper, or syscall(2),
 * whose stand-ins are bound then if they were not.
 */
function bind(loaded: Loaded): Libc {
  const s: Core = BOUND.some((name) => loaded[name] === null)
    ? { ...fallbackSymbols(), ...loaded }
    : loaded as Core; // the stand-ins are read only where a wrapper is null
  return {
    ...s,
    statx: s.statx ??
      ((dirfd, path, flags, mask, buf) =>
        Number(s.syscall_statx(SYS_statx, dirfd, path, flags, mask, buf))),
    open_tree: s.open_tree ??
      ((dirfd, path, flags) => Number(s.syscall_open_tree(SYS_open_tree, dirfd, path, flags))),
    move_mount: s.move_mount ??
      ((fromDirfd, fromPath, toDirfd, toPath, flags) =>
        Number(s.syscall_move_mount(SYS_move_mount, fromDirfd, fromPath, toDirfd, toPath, flags))),
    mount_setattr: s.mount_setattr ??
      ((dirfd, path, flags, attr, size) =>
        Number(s.syscall_mount_setattr(SYS_mount_setattr, dirfd, path, flags, attr, size))),
    openat2: (dirfd, path, how, size) =>
      Number(s.syscall_openat2(SYS_openat2, dirfd, path, how, size)),
  };
}

let loaded: Loaded | undefined;
let fallbacks: Pick<Symbols, Fallback> | undefined;
let sockets: SocketSymbols | undefined;
let table: Libc | undefined;
/**
 * The errno of the calling thread: a view over `__errno_location()`, set
 * when libc is loaded. Read `errnoView[0]` inline, right after the call, in
 * the same expression or statement: not through a function, whose entry may
 * handle V8 interrupts (a GC among them) that can change errno.
 */
export let errnoView: Int32Array = new Int32Array(1);

function dlopen<const S extends Deno.ForeignLibraryInterface>(
  symbols: S,
  call: string,
): Deno.DynamicLibrary<S>["symbols"] {
  try {
    return Deno.dlopen("libc.so.6", symbols).symbols;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new PermissionError("--allow-ffi", `call ${call}`, { cause: error });
    }
    throw error;
  }
}

function load(call: string): Loaded {
  assertSupportedArch();
  const symbols = dlopen(MAIN, call);
  const location = symbols.__errno_location();
  if (location === null) throw new Error("Cannot locate errno: got NULL");
  errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(location, 4));
  return symbols;
}

/**
 * The `syscall(2)` stand-ins for the glibc wrappers of `statx`, `open_tree`,
 * `move_mount` and `mount_setattr`, bound on the first call: at load with a
 * glibc older than 2.36, else only when asked. A test that forces them asks
 * at its module's load, so that no library is opened inside a test.
 *
 * @returns The four `syscall_*` symbols.
 */
export function fallbackSymbols(): Pick<Symbols, Fallback> {
  return fallbacks ??= dlopen(
    Object.fromEntries(FALLBACKS.map((name) => [name, SYMBOLS[name]])) as Pick<
      typeof SYMBOLS,
      Fallback
    >,
    "syscall",
  );
}

/**
 * The Unix-socket calls (and `ioctl` with an argument, `poll` on another
 * thread), bound on the first call. libc is loaded first, so `errnoView` is
 * set.
 *
 * @param call The call that needs them, named in a permission error.
 * @returns The socket symbols.
 * @throws {PermissionError} Without `--allow-ffi`.
 */
export function socketSymbols(call: string): SocketSymbols {
  if (sockets !== undefined) return sockets;
  libc(call);
  return sockets = dlopen(
    Object.fromEntries(SOCKET.map((name) => [name, SYMBOLS[name]])) as Pick<typeof SYMBOLS, Socket>,
    call,
  );
}

/**
 * The table the wrappers call, loaded on first use if it was not at module
 * load.
 *
 * @param call The call that needs it, named in a permission error.
 * @returns The table.
 * @throws {PermissionError} Without `--allow-ffi`: a `Deno.errors.NotCapable`
 * that names the flag and the call.
 * @throws {Error} On an architecture other than x86_64 and aarch64.
 */
export function libc(call: string): Libc {
  return table ??= bind(loaded ??= load(call));
}

/**
 * Replaces the symbol table the wrappers call, until the returned handle is
 * disposed: the one seam below the wrappers. The replacement is bound as the
 * loaded table is, so a table whose glibc wrappers are `null` takes the
 * `syscall(2)` path. A replacement that fails a call must set errno (through
 * a view over the real `__errno_location()`) and return -1, as libc does.
 *
 * @param replace Makes the replacement from the loaded symbols.
 * @returns A handle that puts back the table in use before.
 */
export function replaceSymbols(replace: (loaded: Core) => Core): Disposable {
  const previous = table;
  loaded ??= load("replaceSymbols");
  table = bind(replace({ ...fallbackSymbols(), ...loaded }));
  return {
    [Symbol.dispose](): void {
      table = previous;
    },
  };
}

// On another architecture, the first call throws, not the import.
if (
  Deno.permissions.querySync?.({ name: "ffi" }).state === "granted" &&
  ARCHES.includes(Deno.build.arch)
) {
  loaded = load("dlopen");
  // A glibc older than 2.36 needs the stand-ins: bound now, at load, too.
  table = bind(loaded);
}
