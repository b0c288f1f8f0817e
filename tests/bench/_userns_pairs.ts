/**
 * The Handles pairs of the bench: cached gets, new mappings with and
 * without a pool, and concurrent new mappings, beside a bare `fcntl` dup, a
 * bare spawn of the helper (through libc, as the library spawns it; and
 * through `Deno.Command`, for context) and their C floors (see `_pairs.ts`).
 *
 * @module
 */

import { Handles, type Mapping } from "../../mod.ts";
import { POLLIN, waitFor } from "../../ffi/poll.ts";
import { pidfdOpen, pipe, readSome, reap, spawn } from "../../ffi/process.ts";
import { close, open, writeOnce, writeText } from "../../ffi/syscalls.ts";
import { O_RDONLY } from "../../ffi/constants.ts";
import { CAT, UNSHARE } from "../../lib/userns/programs.ts";
import type { CFloor } from "./_floor.ts";
import {
  awaitPair,
  bare,
  type Bench,
  F_DUPFD_CLOEXEC,
  IDS,
  looped,
  loopedAsync,
  mappings,
  type Side,
} from "./_pairs.ts";

const PING = new Uint8Array([0x2e]);

let next = 0;
/** A mapping no recent call used: 20,000 of them in turn. */
function freshMapping(): Mapping {
  const range = [{ containerID: 0, hostID: IDS.fresh + next++ % 20000, size: 1 }];
  return { uidMappings: range, gidMappings: range };
}

/**
 * A bare spawn of the helper through libc, as the library makes one, and the
 * same work by hand: pinged, its `setgroups`, `uid_map` and `gid_map`
 * written, its `ns/user` opened (and closed), then let go and reaped.
 *
 * @param mapping The mapping to write (default: a fresh one).
 */
async function bareHelper(mapping: Mapping = freshMapping()): Promise<void> {
  const [stdinRead, stdinWrite] = pipe();
  const [stdoutRead, stdoutWrite] = pipe();
  const [stderrRead, stderrWrite] = pipe();
  const pid = spawn(UNSHARE.path, [UNSHARE.path, "--user", "--", CAT.path], [
    stdinRead,
    stdoutWrite,
    stderrWrite,
  ]);
  for (const fd of [stdinRead, stdoutWrite, stderrWrite]) close(fd);
  const pidfd = pidfdOpen(pid);
  writeText(stdinWrite, ".", "stdin");
  await waitFor(stdoutRead, POLLIN, -1);
  readSome(stdoutRead, 16);
  const map = (ranges: Mapping["uidMappings"]): string =>
    ranges.map((r) => `${r.containerID} ${r.hostID} ${r.size}\n`).join("");
  writeOnce(`/proc/${pid}/setgroups`, "deny\n");
  writeOnce(`/proc/${pid}/uid_map`, map(mapping.uidMappings));
  writeOnce(`/proc/${pid}/gid_map`, map(mapping.gidMappings));
  close(open(`/proc/${pid}/ns/user`, O_RDONLY));
  close(stdinWrite);
  while (reap(pidfd) === undefined) await waitFor(pidfd, POLLIN, -1);
  for (const fd of [stdoutRead, stderrRead, pidfd]) close(fd);
}

/** A bare `Deno.Command` spawn of the helper, pinged and let go: how Deno alone would. */
async function commandHelper(): Promise<void> {
  const child = new Deno.Command("unshare", {
    args: ["--user", "--", "cat"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  await writer.write(PING);
  await reader.read();
  await writer.close();
  while (!(await reader.read()).done);
  await child.status;
}

/**
 * The Handles pairs: cached gets (with 1 and 1,000 mappings cached), new
 * mappings with and without a pool, and concurrent new mappings.
 *
 * @param floor The C floor, for `medians.ts`.
 * @returns The pairs, with their caches filled.
 */
export async function usernsBench(floor?: CFloor): Promise<Bench> {
  const mapping = mappings(1, IDS.cached)[0];
  const handles = new Handles();
  const userns = await handles.get(mapping);
  // 1,000 cached mappings, against 1.
  const many = mappings(1000, IDS.many);
  const big = new Handles();
  for (let i = 0; i < many.length; i += 25) {
    for (const fd of await Promise.all(many.slice(i, i + 25).map((m) => big.get(m)))) fd.close();
  }
  const small = new Handles();
  (await small.get(many[500])).close();
  const pooled = new Handles({ prespawn: 1 });
  await pooled.ready();
  const set = mappings(32, IDS.concurrent);
  const dupFloor = floor?.floor("fcntl(F_DUPFD_CLOEXEC) + close", "dup");
  // The same dup, behind the promise an async API returns: no await inside.
  // deno-lint-ignore require-await
  const dupAsync = async () => bare.fcntl(userns.fd, F_DUPFD_CLOEXEC, 0);
  const bareSpawn: Side = {
    name: "bare spawn of the helper (unshare --user cat), mapped by hand",
    fn: () => bareHelper(),
  };
  const newMappingGet: Side = {
    name: "Handles.get (new mapping) + close",
    fn: async () => {
      using fresh = new Handles();
      (await fresh.get(freshMapping())).close();
    },
  };
  const commandSpawn: Side = {
    name: "bare Deno.Command spawn of the helper",
    fn: commandHelper,
  };
  const usernsFloor = floor?.floor("clone(CLONE_NEWUSER) + maps + open + kill + wait", "userns");
  const pooledFloor = floor?.floor("maps + open of a process waiting in its namespace", "pooled");
  const usernsFloor32 = floor?.floor("32 × (clone(CLONE_NEWUSER) + maps + ...)", "userns", 32);
  return {
    pairs: [
      {
        operation: "cached `Handles.get` + close",
        library: loopedAsync(
          "Handles.get (cached) + close",
          async () => {
            (await handles.get(mapping)).close();
          },
          async (n) => {
            for (let i = 0; i < n; i++) (await handles.get(mapping)).close();
          },
        ),
        baseline: looped("fcntl(F_DUPFD_CLOEXEC) + close", (n) => {
          for (let i = 0; i < n; i++) bare.close(bare.fcntl(userns.fd, F_DUPFD_CLOEXEC, 0));
        }),
        floor: dupFloor,
        targets: [{ kind: "ratio", max: 1.3 }, { kind: "time", maxMicros: 5 }],
        n: 50000,
        batch: 1000,
        rounds: 120,
      },
      {
        operation: "cached `Handles.get` + close, against an awaited baseline",
        library: loopedAsync(
          "Handles.get (cached) + close",
          async () => {
            (await handles.get(mapping)).close();
          },
          async (n) => {
            for (let i = 0; i < n; i++) (await handles.get(mapping)).close();
          },
        ),
        baseline: loopedAsync(
          "await (async fcntl(F_DUPFD_CLOEXEC)) + close",
          async () => {
            bare.close(await dupAsync());
          },
          async (n) => {
            for (let i = 0; i < n; i++) bare.close(await dupAsync());
          },
        ),
        floor: dupFloor,
        targets: [],
        n: 50000,
        batch: 1000,
        rounds: 120,
      },
      awaitPair(
        "`fcntl(F_DUPFD_CLOEXEC)` + close, then one `await`: what an `await` costs after a syscall here",
        "fcntl(F_DUPFD_CLOEXEC) + close",
        () => bare.close(bare.fcntl(userns.fd, F_DUPFD_CLOEXEC, 0)),
        dupFloor,
        { n: 50000, batch: 1000, rounds: 120 },
      ),
      {
        operation: "cached `Handles.get` + close, 1,000 mappings cached vs 1",
        library: loopedAsync(
          "Handles.get + close, 1,000 cached",
          async () => {
            (await big.get(many[500])).close();
          },
          async (n) => {
            for (let i = 0; i < n; i++) (await big.get(many[500])).close();
          },
        ),
        baseline: loopedAsync(
          "Handles.get + close, 1 cached",
          async () => {
            (await small.get(many[500])).close();
          },
          async (n) => {
            for (let i = 0; i < n; i++) (await small.get(many[500])).close();
          },
        ),
        floor: dupFloor,
        targets: [{ kind: "ratio", max: 1.2 }],
        n: 50000,
        batch: 1000,
        rounds: 120,
      },
      {
        operation: "new-mapping `Handles.get`, no pool",
        library: newMappingGet,
        baseline: bareSpawn,
        floor: usernsFloor,
        targets: [{ kind: "ratio", max: 1.05 }],
        n: 200,
        batch: 1,
        rounds: 150,
      },
      {
        operation: "the same, against a bare `Deno.Command` spawn (context)",
        library: newMappingGet,
        baseline: commandSpawn,
        floor: usernsFloor,
        targets: [],
        n: 200,
        batch: 1,
        rounds: 100,
      },
      {
        operation: "new-mapping `Handles.get`, warm pool (`prespawn: 1`)",
        library: {
          name: "Handles.get (new mapping, warm pool) + close",
          fn: async () => (await pooled.get(freshMapping())).close(),
          // Untimed: the refill the previous get scheduled.
          before: () => pooled.ready(),
        },
        baseline: bareSpawn,
        floor: pooledFloor,
        targets: [{ kind: "floor", max: 3 }],
        n: 200,
        batch: 1,
        rounds: 150,
      },
      {
        operation: "32 distinct new mappings, concurrent vs serial",
        library: {
          name: "32 gets at once",
          fn: async () => {
            using fresh = new Handles();
            for (const fd of await Promise.all(set.map((m) => fresh.get(m)))) fd.close();
          },
        },
        baseline: {
          name: "32 gets one after another",
          fn: async () => {
            using fresh = new Handles();
            for (const m of set) (await fresh.get(m)).close();
          },
        },
        floor: usernsFloor32,
        targets: [{ kind: "ratio", max: 1 }],
        n: 20,
        batch: 1,
        rounds: 25,
      },
      {
        operation: "32 bare helper spawns, concurrent vs serial: this machine's ceiling",
        library: {
          name: "32 bare spawns at once",
          fn: async () => {
            await Promise.all(set.map((m) => bareHelper(m)));
          },
        },
        baseline: {
          name: "32 bare spawns one after another",
          fn: async () => {
            for (const m of set) await bareHelper(m);
          },
        },
        floor: usernsFloor32,
        targets: [],
        n: 20,
        batch: 1,
        rounds: 25,
      },
    ],
    close(): void {
      userns.close();
      for (const h of [handles, big, small, pooled]) h.release();
    },
  };
}
