/**
 * `deno task test`: runs the suite in both privilege modes, and sets up what
 * the rootless one needs.
 *
 * - As root: the test user first (below), then the root suite, as root in a
 *   private mount namespace (`unshare --mount`), on the real filesystem, told
 *   the test user's name (`MOUNTFD_TEST_USER`: the mount broker's tests run
 *   their clients as that user). Then the rootless suite, as
 *   an unprivileged user with a subordinate id range, under
 *   `unshare --user --map-auto --map-root-user --mount`, on a tmpfs. The user
 *   is `$MOUNTFD_TEST_USER`, or `mfdtest`: it is created (`useradd`), and
 *   given 65536 subordinate uids and gids (`usermod`), if it has none, and the
 *   output says so; when both suites run, before the root suite, which gets
 *   its name as `MOUNTFD_TEST_USER` (it runs rootless runc containers as that
 *   user). Without `newuidmap` (Debian's `uidmap`) the rootless suite can't
 *   run: the output says what to install, and counts it skipped.
 * - As anyone else: the rootless suite alone, with the user's subordinate
 *   range when it has one and `newuidmap` is there, else with one mapped id.
 *
 * It ends with one plain line per suite (passed, FAILED or skipped) and a
 * total. Exit status: 1 if a suite failed, or, with `CI` set, was skipped;
 * else 0.
 *
 * Arguments: `--mode=root` or `--mode=rootless` runs one suite alone; test
 * files (`tests/x_test.ts`) run those files alone, in place of `tests/`;
 * anything else is passed on to `deno test` (`--filter=NAME`). So one file
 * in one mode is `deno task test --mode=rootless tests/x_test.ts`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const ROOTLESS = ["--user", "--map-auto", "--map-root-user", "--mount"];
const RANGE = 65536;

/** The command line: which suites, which files, and what goes to `deno test` as is. */
function parseCommandLine(args: string[]): { mode?: "root" | "rootless"; denoTest: string[] } {
  let mode: "root" | "rootless" | undefined;
  const files: string[] = [];
  const rest: string[] = [];
  for (const arg of args) {
    const asked = arg.match(/^--mode=(.*)$/)?.[1];
    if (asked === "root" || asked === "rootless") mode = asked;
    else if (asked !== undefined) throw new Error(`--mode takes root or rootless: got ${asked}`);
    else if (!arg.startsWith("-") && arg.endsWith(".ts")) files.push(arg);
    else rest.push(arg);
  }
  return {
    mode,
    denoTest: ["test", "--allow-all", ...rest, ...(files.length ? files : ["tests/"])],
  };
}

const { mode: MODE, denoTest } = parseCommandLine(Deno.args);

/** Both suites print with the same colour setting: this terminal's. */
const COLOR_ENV: Record<string, string> = Deno.stdout.isTerminal() && !Deno.noColor
  ? { FORCE_COLOR: "1" }
  : { NO_COLOR: "1" };

/** How a suite went, for the summary. */
interface Outcome {
  label: string;
  status: "passed" | "FAILED" | "skipped";
  detail: string;
}

/** Prints a note of this script's own, set apart from the tests' output. */
function note(text: string): void {
  console.log(`\n=== ${text}`);
}

/**
 * Runs one suite, streaming its output, and reads its counts from the
 * summary line of `deno test`.
 */
async function runSuite(
  label: string,
  title: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Outcome> {
  note(`${label} (${title})\n$ ${[command, ...args].join(" ")}`);
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT,
    env: { ...COLOR_ENV, ...options.env },
    stdin: "null",
    stdout: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let tail = "";
  let counts = "";
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail += decoder.decode(chunk, { stream: true });
    const lines = tail.split("\n");
    tail = lines.pop() ?? "";
    for (const line of lines) counts = countsOf(line) ?? counts;
  }
  counts = countsOf(tail) ?? counts;
  const { code } = await child.status;
  const status = code === 0 ? "passed" : "FAILED";
  const detail = [counts, code === 0 ? "" : `exit code ${code}`].filter(Boolean).join("; ");
  note(`${label}: ${status}${detail ? ` (${detail})` : ""}`);
  return { label, status, detail };
}

/** The counts of a `deno test` summary line (`ok | 3 passed | 0 failed | 1 ignored`). */
function countsOf(line: string): string | undefined {
  // deno-lint-ignore no-control-regex
  const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
  if (!/^(ok|FAILED) \| \d+ passed/.test(plain)) return undefined;
  const count = (what: string): string => plain.match(new RegExp(`(\\d+) ${what}`))?.[1] ?? "0";
  return `${count("passed")} passed, ${count("failed")} failed, ${count("ignored")} ignored`;
}

/** A suite that did not run: why, and the same in a few words for the summary. */
function skipped(label: string, why: string, short: string): Outcome {
  note(`${label}: skipped: ${why}`);
  return { label, status: "skipped", detail: short };
}

/** Whether a program is on PATH. */
function onPath(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      if (Deno.statSync(join(dir || ".", name)).isFile) return true;
    } catch {
      // not there
    }
  }
  return false;
}

/** The subordinate id ranges of a file: owner (name or uid), start and count. */
function subordinateRanges(file: string): { owner: string; start: number; count: number }[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return [];
  }
  return text.split("\n").filter((line) => line.trim() && !line.startsWith("#")).map((line) => {
    const [owner, start, count] = line.split(":");
    return { owner, start: Number(start), count: Number(count) };
  });
}

/** Whether `user` has a range of 65536 ids in `file` (/etc/subuid or /etc/subgid). */
function hasRange(file: string, user: string, uid: number): boolean {
  return subordinateRanges(file).some(({ owner, count }) =>
    (owner === user || owner === String(uid)) && count >= RANGE
  );
}

/** The first id above every range of /etc/subuid and /etc/subgid, and at least 100000. */
function freeRangeStart(): number {
  let start = 100000;
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    for (const range of subordinateRanges(file)) {
      if (Number.isFinite(range.start + range.count)) {
        start = Math.max(start, range.start + range.count);
      }
    }
  }
  return start;
}

/** Runs a set-up command, its output shown; throws with its output if it fails. */
async function setUp(command: string, args: string[]): Promise<void> {
  console.log(`$ ${[command, ...args].join(" ")}`);
  const { success, code } = await new Deno.Command(command, { args, stdin: "null" }).spawn()
    .status;
  if (!success) throw new Error(`${command} exited with code ${code}`);
}

async function idOf(flag: "-u" | "-g", user: string): Promise<number | undefined> {
  const { success, stdout } = await new Deno.Command("id", {
    args: [flag, user],
    stdout: "piped",
    stderr: "null",
  }).output();
  return success ? Number(new TextDecoder().decode(stdout).trim()) : undefined;
}

/**
 * The test user with a subordinate range, created or completed if needed.
 *
 * @returns Its uid and gid, or why there is none.
 */
async function testUser(user: string): Promise<{ uid: number; gid: number } | string> {
  try {
    if (await idOf("-u", user) === undefined) {
      note(`creating the test user ${user} (set MOUNTFD_TEST_USER to use another)`);
      await setUp("useradd", ["--create-home", "--shell", "/bin/bash", user]);
    }
    const uid = await idOf("-u", user);
    const gid = await idOf("-g", user);
    if (uid === undefined || gid === undefined) return `no user ${user}`;
    const add: string[] = [];
    const start = freeRangeStart();
    const range = `${start}-${start + RANGE - 1}`;
    if (!hasRange("/etc/subuid", user, uid)) add.push("--add-subuids", range);
    if (!hasRange("/etc/subgid", user, uid)) add.push("--add-subgids", range);
    if (add.length > 0) {
      note(`giving ${user} the subordinate ids ${range} (it has no range of ${RANGE})`);
      await setUp("usermod", [...add, user]);
    }
    return { uid, gid };
  } catch (error) {
    return `could not set up the test user ${user}: ${(error as Error).message}`;
  }
}

/**
 * The Worker of `openMountNamespace` is type-checked when it first starts,
 * which on a loaded machine can take most of the time the tests give a
 * Worker to start. Starting it once before the suite, under the same Deno
 * cache, fills the type-check cache, so that the tests time the Worker and
 * not the type checker. Best effort: the suite runs whatever happens here.
 */
const WARM_UP = `
const worker = new Worker(new URL("lib/namespace/worker.ts", \`file://\${Deno.cwd()}/\`), {
  type: "module",
});
await new Promise((resolve) => {
  const timer = setTimeout(resolve, 120_000);
  const done = (event: Event): void => {
    event.preventDefault();
    clearTimeout(timer);
    resolve(undefined);
  };
  worker.onmessage = done;
  worker.onerror = done;
  worker.postMessage({ id: 0, kind: "hello" });
});
worker.terminate();
`;

/** Type-checks the Worker module ahead, with `deno run --check` from `cwd`. */
async function warmUp(
  script: string,
  cwd: string,
  prefix: string[] = [],
  deno = Deno.execPath(),
  env: Record<string, string> = {},
): Promise<void> {
  Deno.writeTextFileSync(script, WARM_UP);
  Deno.chmodSync(script, 0o644);
  const [command, ...args] = [...prefix, deno, "run", "--check", "--allow-all", script];
  console.log("type-checking the Worker module ahead, so the tests time the Worker alone");
  await new Deno.Command(command, {
    args,
    cwd,
    env: { ...COLOR_ENV, ...env },
    stdin: "null",
    stdout: "null",
  }).spawn().status;
}

/** Copies what the suite needs where the test user can read it, with Deno. */
function stage(uid: number, gid: number): { dir: string; deno: string } {
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-rootless-" });
  Deno.chmodSync(dir, 0o755);
  const deno = join(dir, "deno");
  Deno.copyFileSync(Deno.execPath(), deno);
  Deno.chmodSync(deno, 0o755);
  const repo = join(dir, "repo");
  copyTree(ROOT, repo);
  for (const path of walk(repo)) Deno.chownSync(path, uid, gid);
  Deno.mkdirSync(join(dir, "cache"));
  Deno.chownSync(join(dir, "cache"), uid, gid);
  return { dir, deno };
}

function copyTree(from: string, to: string): void {
  Deno.mkdirSync(to);
  for (const entry of Deno.readDirSync(from)) {
    if (entry.name === ".git" || entry.name === "node_modules") continue;
    const [src, dst] = [join(from, entry.name), join(to, entry.name)];
    if (entry.isDirectory) copyTree(src, dst);
    else if (entry.isFile) Deno.copyFileSync(src, dst);
  }
}

function* walk(path: string): Generator<string> {
  yield path;
  if (!Deno.statSync(path).isDirectory) return;
  for (const entry of Deno.readDirSync(path)) yield* walk(join(path, entry.name));
}

const NO_NEWUIDMAP = "newuidmap and newgidmap were not found, and `unshare --map-auto` " +
  "needs them: install them with `apt-get install uidmap`";

async function asRoot(): Promise<Outcome[]> {
  const scratch = Deno.makeTempDirSync({ prefix: "mountfd-warm-up-" });
  try {
    await warmUp(join(scratch, "warm_up.ts"), ROOT);
  } finally {
    Deno.removeSync(scratch, { recursive: true });
  }
  const outcomes: Outcome[] = [];
  const user = Deno.env.get("MOUNTFD_TEST_USER") ?? "mfdtest";
  const newuidmap = onPath("newuidmap") && onPath("newgidmap");
  if (MODE !== "rootless") {
    // The root suite runs a rootless runc container as the test user too
    // (tests/_runc.ts): it is made first when both suites run.
    const exists = MODE === undefined && newuidmap
      ? typeof await testUser(user) !== "string"
      : await idOf("-u", user) !== undefined;
    outcomes.push(
      await runSuite(
        "root suite",
        "init user namespace, real filesystem",
        "unshare",
        ["--mount", "--propagation", "private", "--", Deno.execPath(), ...denoTest],
        { env: exists ? { MOUNTFD_TEST_USER: user } : {} },
      ),
    );
  }
  if (MODE === "root") return outcomes;
  const label = "rootless suite";
  if (!newuidmap) {
    return [...outcomes, skipped(label, NO_NEWUIDMAP, "no newuidmap: apt-get install uidmap")];
  }
  const ids = await testUser(user);
  if (typeof ids === "string") return [...outcomes, skipped(label, ids, `no test user ${user}`)];
  const { dir, deno } = stage(ids.uid, ids.gid);
  const env = { DENO_DIR: join(dir, "cache"), HOME: dir };
  try {
    await warmUp(
      join(dir, "warm_up.ts"),
      join(dir, "repo"),
      ["runuser", "-u", user, "--"],
      deno,
      env,
    );
    outcomes.push(
      await runSuite(
        label,
        `user ${user}, user namespace, tmpfs`,
        "runuser",
        ["-u", user, "--", "unshare", ...ROOTLESS, "--", deno, ...denoTest],
        { cwd: join(dir, "repo"), env },
      ),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  return outcomes;
}

async function asUser(): Promise<Outcome[]> {
  const scratch = Deno.makeTempDirSync({ prefix: "mountfd-warm-up-" });
  try {
    await warmUp(join(scratch, "warm_up.ts"), ROOT);
  } finally {
    Deno.removeSync(scratch, { recursive: true });
  }
  const user = Deno.env.get("USER") ?? "";
  const uid = Deno.uid() ?? -1;
  let args = ROOTLESS;
  const ranged = hasRange("/etc/subuid", user, uid) && hasRange("/etc/subgid", user, uid);
  if (!ranged || !onPath("newuidmap") || !onPath("newgidmap")) {
    const why = ranged ? NO_NEWUIDMAP : `${user || `uid ${uid}`} has no subordinate id range ` +
      `of ${RANGE} in /etc/subuid and /etc/subgid`;
    note(
      `${why}: running the rootless suite with one mapped id; tests that need a range ` +
        "say so and skip",
    );
    args = ["--user", "--map-root-user", "--mount"];
  }
  const outcome = await runSuite(
    "rootless suite",
    `user namespace, ${args === ROOTLESS ? "subordinate range" : "one mapped id"}, tmpfs`,
    "unshare",
    [...args, "--", Deno.execPath(), ...denoTest],
  );
  return [outcome];
}

async function main(): Promise<number> {
  if (MODE === "root" && Deno.uid() !== 0) {
    console.error("--mode=root: the root suite needs root; as another user, --mode=rootless");
    return 2;
  }
  const outcomes = Deno.uid() === 0 ? await asRoot() : await asUser();
  const width = Math.max(...outcomes.map(({ label }) => label.length)) + 1;
  const lines = outcomes.map(({ label, status, detail }) =>
    `${`${label}:`.padEnd(width)} ${status}${detail ? ` (${detail})` : ""}`
  );
  const total = (status: Outcome["status"]): number =>
    outcomes.filter((o) => o.status === status).length;
  note("summary");
  console.log(lines.join("\n"));
  console.log(
    `total: ${outcomes.length} suites: ${total("passed")} passed, ${total("FAILED")} failed, ` +
      `${total("skipped")} skipped`,
  );
  const ci = Boolean(Deno.env.get("CI"));
  if (ci && total("skipped") > 0) console.log("CI is set: a skipped suite fails the run");
  return total("FAILED") > 0 || (ci && total("skipped") > 0) ? 1 : 0;
}

Deno.exit(await main());
