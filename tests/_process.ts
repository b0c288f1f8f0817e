/**
 * Test helpers that swap the environment: fake `unshare` programs on PATH,
 * and counting the calls and spawns that tests/_faults.ts sees.
 *
 * @module
 */

import { setFaultHook } from "./_faults.ts";

/**
 * Runs `fn` with PATH holding only a directory of fake programs.
 *
 * @param programs Program name to shell script body.
 * @param fn What to run.
 * @returns What `fn` returns.
 */
export async function withFakePath<T>(
  programs: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-path-" });
  for (const [name, body] of Object.entries(programs)) {
    Deno.writeTextFileSync(`${dir}/${name}`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  const saved = Deno.env.get("PATH");
  Deno.env.set("PATH", dir);
  try {
    return await fn();
  } finally {
    if (saved === undefined) Deno.env.delete("PATH");
    else Deno.env.set("PATH", saved);
    Deno.removeSync(dir, { recursive: true });
  }
}

/**
 * Counts the libc calls and spawns (named as their errors name them) while `fn` runs.
 *
 * @param fn What to run.
 * @returns What `fn` returned, and the count per operation.
 */
export async function countOps<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; ops: Map<string, number> }> {
  const ops = new Map<string, number>();
  setFaultHook((op) => {
    ops.set(op, (ops.get(op) ?? 0) + 1);
    return undefined;
  });
  try {
    return { result: await fn(), ops };
  } finally {
    setFaultHook(undefined);
  }
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
 * Starts `unshare --user cat` and writes its maps from this process, as
 * Handles does; it lives until disposed.
 *
 * @param uidMap The uid_map text.
 * @param gidMap The gid_map text.
 * @returns The holder.
 */
export async function holdUserns(uidMap: string, gidMap: string): Promise<UsernsHolder> {
  const child = new Deno.Command("unshare", {
    args: ["--user", "--", "cat"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  await writer.write(new Uint8Array([1]));
  await reader.read();
  Deno.writeTextFileSync(`/proc/${child.pid}/setgroups`, "deny");
  Deno.writeTextFileSync(`/proc/${child.pid}/uid_map`, uidMap);
  Deno.writeTextFileSync(`/proc/${child.pid}/gid_map`, gidMap);
  return {
    pid: child.pid,
    async [Symbol.asyncDispose](): Promise<void> {
      await writer.close();
      while (!(await reader.read()).done);
      await child.status;
    },
  };
}
