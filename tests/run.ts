/**
 * `deno task test`: runs the suite in both privilege modes.
 *
 * - As root: once as root in a private mount namespace (`unshare --mount`),
 *   on the real filesystem; then as an unprivileged user with a subordinate
 *   id range, under `unshare --user --map-auto --map-root-user --mount`, on a
 *   tmpfs. The user is `$MOUNTFD_TEST_USER`, or `mfdtest` (see `.ci/run`).
 * - As anyone else: the rootless suite alone.
 *
 * Arguments are passed on to `deno test`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const ROOTLESS = ["--user", "--map-auto", "--map-root-user", "--mount"];
const denoTest = ["test", "--allow-all", ...Deno.args, "tests/"];

async function run(
  label: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<boolean> {
  console.log(`\n=== ${label}\n$ ${[command, ...args].join(" ")}`);
  const { code } = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: "null",
  }).spawn().status;
  console.log(`=== ${label}: ${code === 0 ? "passed" : `FAILED (exit code ${code})`}`);
  return code === 0;
}

function hasSubordinateRange(user: string, uid: number): boolean {
  try {
    return Deno.readTextFileSync("/etc/subuid").split("\n").some((line) => {
      const [owner, , count] = line.split(":");
      return (owner === user || owner === String(uid)) && Number(count) >= 65536;
    });
  } catch {
    return false;
  }
}

async function lookupUser(name: string): Promise<number | undefined> {
  const { success, stdout } = await new Deno.Command("id", {
    args: ["-u", name],
    stdout: "piped",
    stderr: "null",
  }).output();
  return success ? Number(new TextDecoder().decode(stdout).trim()) : undefined;
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

async function main(): Promise<number> {
  const results: boolean[] = [];
  if (Deno.uid() === 0) {
    results.push(
      await run("root suite (init user namespace, real filesystem)", "unshare", [
        "--mount",
        "--propagation",
        "private",
        "--",
        Deno.execPath(),
        ...denoTest,
      ]),
    );
    const user = Deno.env.get("MOUNTFD_TEST_USER") ?? "mfdtest";
    const uid = await lookupUser(user);
    if (uid === undefined || !hasSubordinateRange(user, uid)) {
      const why = `no user ${user} with a subordinate id range of 65536 in /etc/subuid ` +
        "(create one as .ci/run does, or set MOUNTFD_TEST_USER)";
      if (Deno.env.get("CI")) {
        console.error(`\n=== rootless suite: FAILED: ${why}`);
        results.push(false);
      } else {
        console.log(`\n=== rootless suite: skipped: ${why}`);
      }
    } else {
      const gid = Number(
        new TextDecoder().decode(
          (await new Deno.Command("id", { args: ["-g", user], stdout: "piped" }).output())
            .stdout,
        ).trim(),
      );
      const { dir, deno } = stage(uid, gid);
      try {
        results.push(
          await run(
            `rootless suite (user ${user}, user namespace, tmpfs)`,
            "runuser",
            ["-u", user, "--", "unshare", ...ROOTLESS, "--", deno, ...denoTest],
            {
              cwd: join(dir, "repo"),
              env: { DENO_DIR: join(dir, "cache"), HOME: dir, NO_COLOR: "1" },
            },
          ),
        );
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    }
  } else {
    const user = Deno.env.get("USER") ?? "";
    const ranged = hasSubordinateRange(user, Deno.uid() ?? -1);
    if (!ranged) {
      console.log(
        "No subordinate id range for this user: running the rootless suite with " +
          "one mapped id; tests that need a range say so and skip.",
      );
    }
    const args = ranged ? ROOTLESS : ["--user", "--map-root-user", "--mount"];
    results.push(
      await run("rootless suite", "unshare", [...args, "--", Deno.execPath(), ...denoTest]),
    );
  }
  return results.every(Boolean) ? 0 : 1;
}

Deno.exit(await main());
