/**
 * The mount broker in a process of its own, and its clients as an
 * unprivileged test user: what `broker_test.ts` and `broker_hostile_test.ts`
 * share.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { socketSymbols } from "../ffi/libc.ts";
import { MNT_DETACH } from "../ffi/constants.ts";
import { umount2 } from "../ffi/syscalls.ts";
import { mount } from "./_syscalls.ts";
import { CANNOT_MOUNT, MAPPED_IDS, MODE, NO_ID_RANGE } from "./_env.ts";
import { type ReadableCopy, readableCopy } from "./_process.ts";

// The socket calls are bound on first use: here, at load, not inside a test
// (Deno's sanitizer sees a library opened in a test as a leak).
if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") socketSymbols("tests");

/** The repository's root. */
export const ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/** The test user, as root: `$MOUNTFD_TEST_USER` (set by `deno task test`), else `mfdtest`. */
export const TEST_USER: string = Deno.env.get("MOUNTFD_TEST_USER") ?? "mfdtest";

function idOf(flag: string): number | undefined {
  if (MODE !== "root") return undefined;
  const { success, stdout } = new Deno.Command("id", {
    args: [flag, TEST_USER],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  return success ? Number(new TextDecoder().decode(stdout).trim()) : undefined;
}

/**
 * The client's uid and gid: the test user's as root; rootless, an id of this
 * user namespace's range (1000), as root of it is the broker.
 */
export const USER: { uid: number; gid: number } | undefined = (() => {
  if (MODE !== "root") return MAPPED_IDS >= 65536 ? { uid: 1000, gid: 1000 } : undefined;
  const uid = idOf("-u");
  const gid = idOf("-g");
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
})();

/** The test user's subordinate uid range start, from /etc/subuid (as root). */
export const SUBUID: number | undefined = (() => {
  if (MODE !== "root") return undefined;
  try {
    const line = Deno.readTextFileSync("/etc/subuid").split("\n")
      .find((l) => l.startsWith(`${TEST_USER}:`) || l.startsWith(`${USER?.uid}:`));
    return line === undefined ? undefined : Number(line.split(":")[1]);
  } catch {
    return undefined;
  }
})();

/** Why the broker's process tests can't run here, or `undefined` if they can. */
export const NO_BROKER_TESTS: string | undefined = CANNOT_MOUNT ??
  (MODE !== "root"
    ? (USER === undefined ? NO_ID_RANGE : undefined)
    : USER === undefined
    ? `no test user ${TEST_USER} (deno task test makes it)`
    : SUBUID === undefined
    ? `${TEST_USER} has no subordinate range in /etc/subuid`
    : undefined);

/**
 * Why a client can't have a user namespace of a subordinate range alone, or
 * the foreign range, here: rootless, newuidmap knows no range of an id
 * inside, and the foreign ids are beyond what this namespace maps.
 */
export const NO_RANGES: string | undefined = MODE === "root"
  ? undefined
  : "rootless, a client's user namespace maps its own id alone (no newuidmap range inside), " +
    "and ids of the foreign range are not mapped here";

/**
 * A scratch directory for the broker's tests: on disk as root, on a tmpfs
 * this user namespace owns when rootless (only that can be id-mapped).
 *
 * @returns The directory, and what removes it.
 */
export function scratch(): { dir: string; close(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-broker-" });
  Deno.chmodSync(dir, 0o755);
  if (MODE === "root") return { dir, close: () => Deno.removeSync(dir, { recursive: true }) };
  mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=16m");
  return {
    dir,
    close(): void {
      umount2(dir, MNT_DETACH);
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** The broker's command line, as `deno task mount-broker` has it, its options aside. */
export const BROKER_COMMAND: readonly string[] = [
  Deno.execPath(),
  "run",
  "--no-check",
  "--allow-ffi",
  "--allow-run=unshare,nsenter",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  join(ROOT, "examples/mount_broker.ts"),
];

/** A running broker. */
export interface Broker extends AsyncDisposable {
  /** Its socket. */
  socket: string;
  /** Its pid. */
  pid: number;
  /** Its log so far. */
  log(): string;
  /** The number of fds it has open. */
  fds(): number;
}

/**
 * Starts `examples/mount_broker.ts` on a socket in `dir`, and waits until it
 * listens.
 *
 * @param dir A directory for the socket.
 * @param env Bounds, as `MOUNTFD_BROKER_*` variables.
 * @returns The broker; dispose of it to stop it.
 */
export async function startBroker(dir: string, env: Record<string, string> = {}): Promise<Broker> {
  const socket = join(dir, "broker.sock");
  const [deno, ...args] = BROKER_COMMAND;
  const child = new Deno.Command(deno, {
    args: [...args, "--socket", socket],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  const until = Date.now() + 30_000;
  while (!text.includes("listening on")) {
    if (Date.now() > until) throw new Error(`The broker did not start: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    socket,
    pid: child.pid,
    log: () => text,
    fds: () => [...Deno.readDirSync(`/proc/${child.pid}/fd`)].length,
    async [Symbol.asyncDispose](): Promise<void> {
      child.kill("SIGTERM");
      await child.status;
      await reading;
    },
  };
}

/** What the client probe reports. */
export interface ProbeResult {
  /** Whether the broker gave a mount. */
  ok: boolean;
  /** The error's name, when it refused. */
  error?: string;
  /** Its parameters. */
  parameters?: Record<string, unknown>;
  /** The files through the mount, `name` -> `uid:gid` as the client sees them. */
  files?: Record<string, string>;
  /** The mount's options in mountinfo. */
  options?: string;
  /** What writing a new file through the mount gave: "ok" or an errno name. */
  write?: string;
  /** Anything else it said. */
  message?: string;
}

/** A request, as `_broker_client.ts` takes it. */
export interface ProbeRequest {
  /** The broker's socket. */
  socket: string;
  /** The directory. */
  dir: string;
  /** Open it `O_PATH`. */
  opath?: boolean;
  /** The user namespace file, or null for none (default: the client's own). */
  userns?: string | null;
  /** Read-only. */
  readOnly?: boolean;
  /** The mode. */
  mode?: string;
  /** Our interface's ids. */
  as?: { uid: number; gid: number };
  /** Where to attach it, in the client's mount namespace. */
  attach?: string;
}

/** The ways a client runs: which user and namespaces. */
export type Wrapper = "plain" | "map-auto" | "subordinate";

/** A Deno cache the test user can write. */
let cache: string | undefined;
/** The repository's files, where the test user can read them. */
let files: ReadableCopy | undefined;

addEventListener("unload", () => {
  files?.[Symbol.dispose]();
  if (cache !== undefined) Deno.removeSync(cache, { recursive: true });
});

/**
 * The repository's files as the test user reads them: a copy, since a
 * checkout may be under a directory only root can enter (`mktemp -d` makes
 * one `0700`), and a Deno it may run.
 *
 * @returns Where `mod.ts`, `lib/`, `ffi/`, `examples/` and `tests/` are, and Deno.
 */
export function clientFiles(): { root: string; deno: string } {
  files ??= readableCopy(["mod.ts", "lib", "ffi", "examples", "tests"]);
  return files;
}
function denoDir(): string {
  if (cache !== undefined) return cache;
  cache = Deno.makeTempDirSync({ prefix: "mountfd-broker-cache-" });
  Deno.chmodSync(cache, 0o777);
  return cache;
}

/**
 * Runs `cmd` as the test user (`setpriv`), in namespaces of its own: none,
 * `unshare --user --map-auto --map-root-user --mount`, or a user namespace
 * that maps `0:SUBUID:65536` alone (its creator keeps its capabilities there).
 *
 * @param wrapper The namespaces.
 * @param cmd The command.
 * @returns The full command line.
 */
export function asTestUser(wrapper: Wrapper, cmd: string[]): string[] {
  const user = USER!;
  const setpriv = [
    "setpriv",
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--clear-groups",
    "--",
    "env",
    `DENO_DIR=${denoDir()}`,
    `HOME=${denoDir()}`,
  ];
  const range = `${SUBUID},0,65536`;
  const unshare = wrapper === "plain" ? [] : wrapper === "map-auto"
    ? [
      "unshare",
      "--user",
      ...(MODE === "root" ? ["--map-auto"] : []),
      "--map-root-user",
      "--mount",
    ]
    : ["unshare", `--map-users=${range}`, `--map-groups=${range}`, "--mount", "--keep-caps"];
  return [...setpriv, ...(unshare.length > 0 ? [...unshare, "--"] : []), ...cmd];
}

/**
 * Runs the Deno client probe as the test user.
 *
 * @param wrapper Its namespaces.
 * @param request The request.
 * @returns What it reports.
 */
export async function probe(wrapper: Wrapper, request: ProbeRequest): Promise<ProbeResult> {
  const { root, deno } = clientFiles();
  const cmd = asTestUser(wrapper, [
    deno,
    "run",
    "--no-check",
    "--allow-ffi",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    join(root, "tests/_broker_client.ts"),
    JSON.stringify(request),
  ]);
  return await runJson(cmd);
}

/**
 * Runs a command that prints one JSON line, and parses it.
 *
 * @param cmd The command line.
 * @returns The parsed output.
 */
export async function runJson(cmd: string[]): Promise<ProbeResult> {
  const { stdout, stderr, code } = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout).trim();
  try {
    return JSON.parse(out.split("\n").at(-1) ?? "");
  } catch {
    throw new Error(
      `The client exited with ${code}: ${out} ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/**
 * Makes a directory owned by `uid:gid`, with a file of the same owner in it.
 *
 * @param path The directory.
 * @param uid Its owner.
 * @param gid Its group.
 * @param mode Its mode.
 */
export function ownedDir(path: string, uid: number, gid: number, mode = 0o755): void {
  Deno.mkdirSync(path, { recursive: true });
  Deno.writeTextFileSync(join(path, "file"), "data");
  Deno.chownSync(join(path, "file"), uid, gid);
  Deno.chownSync(path, uid, gid);
  Deno.chmodSync(path, mode);
}
