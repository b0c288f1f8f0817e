/**
 * The libc symbol table: the one place that calls `Deno.dlopen`.
 *
 * Nothing is bound at import. A symbol is bound on its first call, alone or
 * with its group ({@linkcode GROUPS}), so that a process pays (~0.15 ms a
 * symbol, ~0.7 ms for its first `Deno.dlopen`) only for the calls it makes.
 * A missing permission becomes a clear error naming the flag and the call
 * that needed it. The calls that glibc may not wrap (the new mount API,
 * `statx`) and those it never wraps (`openat2`) are bound, on first use, to
 * glibc's wrapper or to `syscall(2)`: the wrappers in `syscalls.ts` call one
 * function either way.
 *
 * No library handle stays open: libc.so.6 stays loaded anyway (Deno itself
 * links it), and each function Deno makes keeps its own symbol, so the handle
 * is closed once its symbols are bound (unless one of them is `nonblocking`:
 * such a call goes through the handle). A first call made inside a user's
 * `Deno.test` then leaves no resource for the test's sanitizer to report.
 *
 * @module
 */

import { PermissionError } from "./permission_error.ts";
import { SYMBOLS } from "./symbols.ts";

export { SYMBOLS };

/** The symbols as `Deno.dlopen` loads them: the optional ones may be `null`. */
export type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A symbol's name in {@linkcode SYMBOLS}. */
export type SymbolName = keyof typeof SYMBOLS;

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
] as const;
type Socket = typeof SOCKET[number];

/**
 * The symbols the table leaves out: the socket calls, and `poll` on another
 * thread ({@linkcode pollWait}).
 */
type Apart = Socket | "poll_wait";
const APART: readonly string[] = [...SOCKET, "poll_wait"];

/** The symbols of the table the wrappers call: all but the socket calls and `poll`. */
export type Core = Omit<Symbols, Apart>;

/** The socket calls as `socketSymbols` gives them. */
export type SocketSymbols = Pick<Symbols, Socket>;

/**
 * Symbols bound together, in one `Deno.dlopen`, on the first call of any of
 * them: calls that are made together, or not at all. Every other symbol is
 * bound alone, on its first call.
 */
export const GROUPS: readonly (readonly SymbolName[])[] = [
  // What the first call binds: errno's view, and the calls every path makes.
  ["__errno_location", "open", "close"],
  // What each new user namespace makes: its maps written, its fd dup'd.
  ["openat", "write", "fcntl"],
  // The syscall(2) stand-ins, needed only with a glibc older than 2.36.
  FALLBACKS,
  // What a userns helper is spawned, signalled and reaped with.
  [
    "pipe2",
    "posix_spawnp",
    "posix_spawn_file_actions_init",
    "posix_spawn_file_actions_adddup2",
    "posix_spawn_file_actions_destroy",
    "waitid",
    "syscall_pidfd",
  ],
  // The Unix-socket calls.
  SOCKET,
];

/**
 * The table the wrappers call: libc's symbols, with `statx`, `open_tree`,
 * `move_mount`, `mount_setattr` and `openat2` bound to glibc's wrapper where
 * it has one, and to `syscall(2)` where it has not. Each returns -1 and sets
 * errno on failure, as the C call does.
 */
export type Libc =
  & Omit<Symbols, Bound | `syscall_${string}` | Apart>
  & { [K in Bound]: NonNullable<Symbols[K]> }
  & {
    /** openat2(2): `int openat2(int dirfd, const char *path, struct open_how *how, size_t size)`. */
    openat2(dirfd: number, path: BufferSource, how: BufferSource, size: bigint): number;
    /** pidfd_open(2): `int pidfd_open(pid_t pid, unsigned int flags)`. */
    pidfd_open(pid: number, flags: number): number;
    /** pidfd_send_signal(2), with no siginfo: `int pidfd_send_signal(int pidfd, int sig, NULL, 0)`. */
    pidfd_send_signal(pidfd: number, signal: number): number;
    /** kill(2): `int kill(pid_t pid, int sig)`. */
    kill(pid: number, signal: number): number;
  };

/** The calls that are always made through `syscall(2)`, each with the entry it is made through. */
const RAW = {
  openat2: "syscall_openat2",
  pidfd_open: "syscall_pidfd",
  pidfd_send_signal: "syscall_pidfd",
  kill: "syscall_pidfd",
} as const satisfies Record<string, SymbolName>;
type Raw = keyof typeof RAW;

/** Whether a call of the table is made through `syscall(2)` always. */
function isRaw(name: keyof Libc): name is Raw {
  return Object.hasOwn(RAW, name);
}

// Syscall numbers. Those of the new mount API and openat2 are equal on
// x86_64 and aarch64; statx's are not.
const SYS_open_tree = 428n;
const SYS_move_mount = 429n;
const SYS_openat2 = 437n;
const SYS_pidfd_send_signal = 424n;
const SYS_pidfd_open = 434n;
const SYS_kill = Deno.build.arch === "aarch64" ? 129n : 62n;
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

/** The calls made through `syscall(2)`, from the stand-ins in `s`. */
const THROUGH_SYSCALL = {
  statx: (s: Pick<Symbols, "syscall_statx">): Libc["statx"] => (dirfd, path, flags, mask, buf) =>
    Number(s.syscall_statx(SYS_statx, dirfd, path, flags, mask, buf)),
  open_tree: (s: Pick<Symbols, "syscall_open_tree">): Libc["open_tree"] => (dirfd, path, flags) =>
    Number(s.syscall_open_tree(SYS_open_tree, dirfd, path, flags)),
  move_mount:
    (s: Pick<Symbols, "syscall_move_mount">): Libc["move_mount"] =>
    (fromDirfd, fromPath, toDirfd, toPath, flags) =>
      Number(s.syscall_move_mount(SYS_move_mount, fromDirfd, fromPath, toDirfd, toPath, flags)),
  mount_setattr:
    (s: Pick<Symbols, "syscall_mount_setattr">): Libc["mount_setattr"] =>
    (dirfd, path, flags, attr, size) =>
      Number(s.syscall_mount_setattr(SYS_mount_setattr, dirfd, path, flags, attr, size)),
  openat2: (s: Pick<Symbols, "syscall_openat2">): Libc["openat2"] => (dirfd, path, how, size) =>
    Number(s.syscall_openat2(SYS_openat2, dirfd, path, how, size)),
  pidfd_open: (s: Pick<Symbols, "syscall_pidfd">): Libc["pidfd_open"] => (pid, flags) =>
    Number(s.syscall_pidfd(SYS_pidfd_open, BigInt(pid), BigInt(flags), 0n, 0n)),
  pidfd_send_signal:
    (s: Pick<Symbols, "syscall_pidfd">): Libc["pidfd_send_signal"] => (pidfd, signal) =>
      Number(s.syscall_pidfd(SYS_pidfd_send_signal, BigInt(pidfd), BigInt(signal), 0n, 0n)),
  kill: (s: Pick<Symbols, "syscall_pidfd">): Libc["kill"] => (pid, signal) =>
    Number(s.syscall_pidfd(SYS_kill, BigInt(pid), BigInt(signal), 0n, 0n)),
} as const;

/**
 * The table from a whole set of symbols: glibc's wrapper where it is not
 * `null`, else `syscall(2)`.
 */
function bind(s: Core): Libc {
  return {
    ...s,
    statx: s.statx ?? THROUGH_SYSCALL.statx(s),
    open_tree: s.open_tree ?? THROUGH_SYSCALL.open_tree(s),
    move_mount: s.move_mount ?? THROUGH_SYSCALL.move_mount(s),
    mount_setattr: s.mount_setattr ?? THROUGH_SYSCALL.mount_setattr(s),
    openat2: THROUGH_SYSCALL.openat2(s),
    pidfd_open: THROUGH_SYSCALL.pidfd_open(s),
    pidfd_send_signal: THROUGH_SYSCALL.pidfd_send_signal(s),
    kill: THROUGH_SYSCALL.kill(s),
  };
}

/** The symbols bound so far, by name. */
const bound: Partial<Symbols> = {};

/**
 * The errno of the calling thread: a view over `__errno_location()`, set
 * by the first call of {@linkcode libc}, before any symbol is called. Read
 * `errnoView[0]` inline, right after the call, in the same expression or
 * statement: not through a function, whose entry may handle V8 interrupts
 * (a GC among them) that can change errno.
 */
export let errnoView: Int32Array = new Int32Array(1);

/**
 * Binds `names` that are not bound yet, in one `Deno.dlopen`, and closes the
 * handle unless a `nonblocking` call needs it.
 */
function dlopen(names: readonly SymbolName[], call: string): void {
  const wanted = names.filter((name) => !(name in bound));
  if (wanted.length === 0) return;
  const symbols = Object.fromEntries(wanted.map((name) => [name, SYMBOLS[name]]));
  let library: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>;
  try {
    library = Deno.dlopen("libc.so.6", symbols);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new PermissionError("--allow-ffi", `call ${call}`, { cause: error });
    }
    throw error;
  }
  Object.assign(bound, library.symbols);
  if (!wanted.some((name) => "nonblocking" in SYMBOLS[name])) library.close();
}

/** Binds `name` with its group, or alone. */
function bindSymbol(name: SymbolName, call: string): void {
  dlopen(GROUPS.find((group) => group.includes(name)) ?? [name], call);
}

/**
 * The `syscall(2)` stand-ins for the glibc wrappers of `statx`, `open_tree`,
 * `move_mount` and `mount_setattr`, bound on the first call: with a glibc
 * older than 2.36, on the first call of one of those, else only when asked.
 *
 * @returns The four `syscall_*` symbols.
 */
export function fallbackSymbols(): Pick<Symbols, Fallback> {
  bindSymbol(FALLBACKS[0], "syscall");
  return bound as Pick<Symbols, Fallback>;
}

/**
 * The Unix-socket calls (and `ioctl` with an argument), bound together on
 * the first call. libc is loaded first, so `errnoView` is set.
 *
 * @param call The call that needs them, named in a permission error.
 * @returns The socket symbols.
 * @throws {PermissionError} Without `--allow-ffi`.
 */
export function socketSymbols(call: string): SocketSymbols {
  libc(call);
  bindSymbol(SOCKET[0], call);
  return bound as SocketSymbols;
}

/** The library that `poll` on another thread is bound from, while a wait is on. */
let poller:
  | { library: Deno.DynamicLibrary<{ poll_wait: typeof SYMBOLS.poll_wait }>; waits: number }
  | undefined;

/**
 * poll(2) on another thread: the event loop goes on meanwhile. Only the
 * result is used (errno is lost on that thread). A `nonblocking` call goes
 * through its library's handle, so the handle is open only while a wait is
 * on: a wait made inside a user's sanitized `Deno.test` leaves no library
 * open behind it (~0.05 ms to bind again after the last wait ended).
 *
 * @param fds `struct pollfd` entries.
 * @param count How many.
 * @param timeout Milliseconds (-1: no limit).
 * @returns The ready count, 0 on timeout, -1 on failure.
 * @throws {PermissionError} Without `--allow-ffi`.
 */
export async function pollWait(
  fds: Uint8Array<ArrayBuffer>,
  count: bigint,
  timeout: number,
): Promise<number> {
  if (poller === undefined) {
    try {
      poller = {
        library: Deno.dlopen("libc.so.6", { poll_wait: SYMBOLS.poll_wait }),
        waits: 0,
      };
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) {
        throw new PermissionError("--allow-ffi", "call poll", { cause: error });
      }
      throw error;
    }
  }
  const own = poller;
  own.waits++;
  try {
    return await own.library.symbols.poll_wait(fds, count, timeout);
  } finally {
    if (--own.waits === 0) {
      own.library.close();
      if (poller === own) poller = undefined;
    }
  }
}

/** Binds a call of the table, the first time it is made. */
function bindCall(name: keyof Libc): Libc[keyof Libc] {
  if (isRaw(name)) {
    bindSymbol(RAW[name], name);
    return THROUGH_SYSCALL[name](bound as Symbols);
  }
  bindSymbol(name, name);
  const own = bound[name];
  if (own !== null && own !== undefined) return own;
  // A glibc without the wrapper: syscall(2).
  const through = THROUGH_SYSCALL[name as Bound];
  return through(fallbackSymbols() as Symbols);
}

/** The names of the table's calls. */
const CALLS: readonly (keyof Libc)[] = [
  ...(Object.keys(SYMBOLS) as SymbolName[]).filter((name) =>
    !name.startsWith("syscall_") && name !== "__errno_location" && !APART.includes(name)
  ) as (keyof Libc)[],
  ...Object.keys(RAW) as Raw[],
];

/**
 * The table whose every entry binds its symbol when it is first read, then
 * gives that symbol's own function, each time: a getter, not a stand-in
 * that calls it, so that a call site only ever sees the real function (a
 * call site that saw two targets can no longer make Deno's fast FFI call).
 */
function lazyTable(): Libc {
  const table = {};
  for (const name of CALLS) {
    let fn: Libc[keyof Libc] | undefined;
    Object.defineProperty(table, name, { get: () => fn ??= bindCall(name), enumerable: true });
  }
  return table as Libc;
}

let table: Libc | undefined;

/** Binds errno's view, on the first call of {@linkcode libc}. */
function start(call: string): Libc {
  assertSupportedArch();
  bindSymbol("__errno_location", call);
  const location = bound.__errno_location!();
  if (location === null) throw new Error("Cannot locate errno: got NULL");
  errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(location, 4));
  return table = lazyTable();
}

/**
 * The table the wrappers call. Its first call binds errno's view; each
 * symbol is bound on its own first call.
 *
 * @param call The call that needs it, named in a permission error.
 * @returns The table.
 * @throws {PermissionError} Without `--allow-ffi`: a `Deno.errors.NotCapable`
 * that names the flag and the call.
 * @throws {Error} On an architecture other than x86_64 and aarch64.
 */
export function libc(call: string): Libc {
  return table ?? start(call);
}

/**
 * Replaces the symbol table the wrappers call, until the returned handle is
 * disposed: the one seam below the wrappers. Every symbol but the socket
 * calls and `poll` is bound first.
 * The replacement is bound as a glibc would be, so a table whose glibc
 * wrappers are `null` takes the `syscall(2)` path. A replacement that fails
 * a call must set errno (through a view over the real `__errno_location()`)
 * and return -1, as libc does.
 *
 * @param replace Makes the replacement from the symbols.
 * @returns A handle that puts back the table in use before.
 */
export function replaceSymbols(replace: (loaded: Core) => Core): Disposable {
  libc("replaceSymbols");
  const previous = table;
  const names = (Object.keys(SYMBOLS) as SymbolName[]).filter((name) => !APART.includes(name));
  dlopen(names, "replaceSymbols");
  table = bind(replace(Object.fromEntries(names.map((name) => [name, bound[name]])) as Core));
  return {
    [Symbol.dispose](): void {
      table = previous;
    },
  };
}
