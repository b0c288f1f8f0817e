/**
 * Test helpers about processes: hooks that see every spawn, counting
 * operations (libc calls and spawns, through the faulting symbol table of
 * _faults.ts), and user namespaces read or held by hand.
 *
 * The library has no hook for spawns of its own: it spawns its helpers
 * through libc, and a test sees them through the one seam below the
 * wrappers, as it sees every other call.
 *
 * @module
 */

import assert from "node:assert/strict";
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { cText, setFaultHook, setSpawnHooks, type SpawnHooks } from "./_faults.ts";

export type { SpawnHooks };

/**
 * Runs `fn` with `hooks` called around each spawn the library makes through
 * libc (the userns helpers).
 *
 * @param hooks What to call.
 * @param fn What to run.
 * @returns What `fn` returns.
 */
export async function withSpawnHooks<T>(hooks: SpawnHooks, fn: () => Promise<T>): Promise<T> {
  setSpawnHooks(hooks);
  try {
    return await fn();
  } finally {
    setSpawnHooks(undefined);
  }
}

/**
 * Whether a process has exited and waits, a zombie, to be reaped.
 *
 * @param pid The process.
 * @returns Whether it is a zombie.
 */
export function zombie(pid: number): boolean {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

/**
 * A spawn hook that stops each helper (`SIGSTOP`) right after its spawn,
 * before it is pinged: it can't echo.
 *
 * @param pid The helper's pid.
 */
export function stopAtSpawn(pid: number): void {
  Deno.kill(pid, "SIGSTOP");
}

/**
 * Runs `fn`, and `action` once a helper it spawns is ready: it has echoed
 * from its new namespace, and its first `/proc` file (`setgroups`) is about
 * to be opened.
 *
 * @param action What to do then, given the helper's pid. It runs inside a
 * libc call's hook: it must not call the library's path wrappers.
 * @param fn What to run.
 * @returns What `fn` returns.
 */
export async function whenHelperReady<T>(
  action: (pid: number) => void,
  fn: () => Promise<T>,
): Promise<T> {
  let pid = 0;
  let done = false;
  setFaultHook((_op, { symbol, args }) => {
    if (done || pid === 0 || symbol !== "openat") return undefined;
    if (cText(args[1] as Uint8Array) !== "setgroups") return undefined;
    done = true;
    action(pid);
    return undefined;
  });
  try {
    return await withSpawnHooks({ after: (child) => void (pid = child) }, fn);
  } finally {
    setFaultHook(undefined);
  }
}

/**
 * Counts what happens while `fn` runs: each libc call through _faults.ts,
 * by its op, and each spawn, as `"spawn NAME"` (the program's base name).
 *
 * @param fn What to run.
 * @returns What `fn` returned, and the count per operation.
 */
export async function countOps<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; ops: Map<string, number> }> {
  const ops = new Map<string, number>();
  const count = (op: string): void => {
    ops.set(op, (ops.get(op) ?? 0) + 1);
  };
  setFaultHook((op) => {
    count(op);
    return undefined;
  });
  try {
    const result = await withSpawnHooks(
      { before: (command) => count(`spawn ${basename(command)}`) },
      fn,
    );
    return { result, ops };
  } finally {
    setFaultHook(undefined);
  }
}

/**
 * The spawns that {@linkcode countOps} counted: those on a get's critical
 * path, and a pool's refills made while it counted.
 *
 * @param ops The counts of {@linkcode countOps}.
 * @returns How many `unshare` helpers were spawned.
 */
export function spawns(ops: Map<string, number>): number {
  return ops.get("spawn unshare") ?? 0;
}

/**
 * Waits until `check` holds, polling every 5 ms.
 *
 * @param check What must come to hold.
 * @param what What is awaited, for the error.
 * @param ms How long to wait before failing.
 */
export async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The number of this process's children, zombies included, from
 * `/proc/self/task/TID/children`: cheaper than a walk of `/proc`.
 *
 * @returns How many there are.
 */
export function childCount(): number {
  let n = 0;
  for (const task of Deno.readDirSync("/proc/self/task")) {
    let text: string;
    try {
      text = Deno.readTextFileSync(`/proc/self/task/${task.name}/children`);
    } catch {
      continue; // a thread that ended meanwhile
    }
    for (const pid of text.split(" ")) if (pid.trim() !== "") n++;
  }
  return n;
}

/**
 * A process's fds, by number, each with what it points at.
 *
 * @param pid The process.
 * @returns Its fds.
 */
export function processFds(pid: number): Record<string, string> {
  const fds: Record<string, string> = {};
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      fds[entry.name] = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
    } catch {
      // closed meanwhile
    }
  }
  return fds;
}

/**
 * The uid_map, gid_map and setgroups of the user namespace behind an fd, read
 * from inside it with nsenter.
 *
 * @param fd An fd of a user namespace.
 * @returns The three files' text.
 */
export async function namespaceMaps(
  fd: number,
): Promise<{ uid: string; gid: string; setgroups: string }> {
  const { success, stdout, stderr } = await new Deno.Command("nsenter", {
    args: [
      `--user=/proc/${Deno.pid}/fd/${fd}`,
      "--",
      "sh",
      "-c",
      "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; cat /proc/self/setgroups",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(success ? stdout : stderr);
  if (!success) throw new Error(`nsenter failed: ${text}`);
  const norm = (s: string) =>
    s.trim().split("\n").map((line) => line.trim().split(/\s+/).join(" ")).join("\n");
  const [uid, gid, setgroups] = text.split("--\n").map(norm);
  return { uid, gid, setgroups };
}

/** A process in a new user namespace with given maps, for tests. */
export interface UsernsHolder {
  /** Its pid. */
  pid: number;
  /** Ends it and reaps it. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a {@linkcode bareHelper} and writes its maps from this process, as
 * Handles does; it lives until disposed.
 *
 * @param uidMap The uid_map text.
 * @param gidMap The gid_map text.
 * @returns The holder.
 */
export async function holdUserns(uidMap: string, gidMap: string): Promise<UsernsHolder> {
  const helper = await bareHelper();
  try {
    Deno.writeTextFileSync(`/proc/${helper.pid}/setgroups`, "deny");
    Deno.writeTextFileSync(`/proc/${helper.pid}/uid_map`, uidMap);
    Deno.writeTextFileSync(`/proc/${helper.pid}/gid_map`, gidMap);
  } catch (error) {
    await helper[Symbol.asyncDispose]();
    throw error;
  }
  return helper;
}

/** A bare userns helper, the process Handles spawns, held by a test. */
export interface BareHelper {
  /** Its pid. */
  readonly pid: number;
  /** Lets it go: closes its stdin, drains its output, and reaps it. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Spawns `unshare --user -- cat` and pings it: once cat echoes, unshare has
 * made the user namespace. Its output is read into small buffers, as the
 * library reads it.
 *
 * @param cat The cat to run, as argv: `["cat"]` from PATH by default.
 * @returns The helper, alive until disposed.
 */
export async function bareHelper(cat: readonly string[] = ["cat"]): Promise<BareHelper> {
  const child = new Deno.Command("unshare", {
    args: ["--user", "--", ...cat],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader({ mode: "byob" });
  const letGo = async (): Promise<string> => {
    await writer.close().catch(() => {});
    while (!(await reader.read(new Uint8Array(16))).done);
    const stderr = await new Response(child.stderr).text();
    await child.status;
    return stderr;
  };
  await writer.write(new Uint8Array([0x2e])).catch(() => {});
  if ((await reader.read(new Uint8Array(16))).done) {
    throw new Error(`unshare --user failed: ${(await letGo()).trim()}`);
  }
  return {
    pid: child.pid,
    async [Symbol.asyncDispose](): Promise<void> {
      await letGo();
    },
  };
}

/** tests/_userns_probe.ts, which makes a user namespace in a process of its own. */
export const PROBE: string = fileURLToPath(new URL("./_userns_probe.ts", import.meta.url));

/** What {@linkcode PROBE} prints. */
export interface ProbeResult {
  /** Whether the call succeeded. */
  ok?: boolean;
  /** The error's name, message, op and code, if it failed. */
  name?: string;
  /** See `name`. */
  message?: string;
  /** See `name`. */
  op?: string;
  /** See `name`. */
  code?: string;
  /** The programs it spawned, as given to `Deno.Command`. */
  spawned: string[];
  /** In `helper` mode: the helper's fds. */
  fds?: Record<string, string>;
  /** In `helper` mode: the probe's fds that are not close-on-exec, beyond stdio. */
  inherited?: number[];
  /** In `helper` mode: the helper's command line. */
  cmdline?: string[];
}

/**
 * Runs `command` (which runs the probe, maybe through a shell or unshare),
 * and parses what the probe prints.
 *
 * @param command The program.
 * @param args Its arguments.
 * @param env Environment variables to set.
 * @returns What the probe printed.
 */
export async function runProbe(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<ProbeResult> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    env,
    cwd: fileURLToPath(new URL("../", import.meta.url)),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `${out}\n${new TextDecoder().decode(stderr)}`);
  return JSON.parse(out);
}

/** A copy of the repository's files that another user can read, and a Deno it can run. */
export interface ReadableCopy extends Disposable {
  /** The copy's root, where `mod.ts` is. */
  root: string;
  /** The copy's `mod.ts`, as a file path. */
  mod: string;
  /** A Deno binary any user may execute. */
  deno: string;
}

/** Whether any user may execute `path`: it, and every directory above it, have the x bit for others. */
function othersMayRun(path: string): boolean {
  for (let at = path; at !== "/"; at = dirname(at)) {
    if (((Deno.statSync(at).mode ?? 0) & 0o001) === 0) return false;
  }
  return true;
}

/**
 * Copies files of the repository into a directory anyone can read, for a
 * test that runs them as another user: a checkout may sit under a directory
 * only its owner can enter (`mktemp -d` makes one `0700`). Deno is copied
 * too when not every user may execute it where it is.
 *
 * @param parts What to copy, relative to the repository (default: `mod.ts`,
 * `lib/` and `ffi/`).
 * @returns Where the copy is; disposing it removes it.
 */
export function readableCopy(parts: string[] = ["mod.ts", "lib", "ffi"]): ReadableCopy {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-readable-" });
  const copy = (from: string, to: string): void => {
    if (Deno.statSync(from).isDirectory) {
      Deno.mkdirSync(to, { mode: 0o755 });
      Deno.chmodSync(to, 0o755);
      for (const entry of Deno.readDirSync(from)) {
        copy(`${from}/${entry.name}`, `${to}/${entry.name}`);
      }
    } else {
      Deno.copyFileSync(from, to);
      Deno.chmodSync(to, 0o644);
    }
  };
  Deno.chmodSync(dir, 0o755);
  for (const name of parts) copy(`${root}${name}`, `${dir}/${name}`);
  let deno = Deno.execPath();
  if (!othersMayRun(deno)) {
    deno = `${dir}/deno`;
    Deno.copyFileSync(Deno.execPath(), deno);
    Deno.chmodSync(deno, 0o755);
  }
  return {
    root: dir,
    mod: `${dir}/mod.ts`,
    deno,
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}
