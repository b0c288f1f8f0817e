/**
 * runc's id-map test tree (tests/integration/idmap.bats), scaled to ids a
 * rootless user namespace with 65536 subordinate ids can hold, and a test
 * wrapper that checks for leaks.
 *
 * @module
 */

import { MS_BIND } from "../ffi/constants.ts";
import { mount } from "./_syscalls.ts";
import { attachMountSource, type IDMap, type MountSource } from "../mod.ts";
import { CANNOT_MOUNT, NO_ID_RANGE, skipUnless } from "./_env.ts";
import { Fixture } from "./_fixture.ts";
import { leavesNothing } from "./_leaks.ts";

/** Owners of the files of runc's sources, as `[file, uid, gid]`. */
export const TREE: Record<string, [string, number, number][]> = {
  "source-1": [["foo.txt", 0, 0]],
  "source-2": [["foo.txt", 1, 1]],
  "source-multi1": [["foo.txt", 100, 211], ["bar.txt", 101, 222], ["baz.txt", 102, 233]],
  "source-multi2": [["foo.txt", 200, 211], ["bar.txt", 201, 222], ["baz.txt", 202, 233]],
  // runc uses 5000528:6000491 and so on; these fit in 65536 ids.
  "source-multi3": [["foo.txt", 50528, 60491], ["bar.txt", 50133, 60337], [
    "baz.txt",
    50999,
    60444,
  ]],
  "mnt-subtree": [["foo.txt", 100, 211], ["bar.txt", 200, 222], ["baz.txt", 300, 233]],
};

/**
 * Builds runc's tree in a fixture: the sources, a symlink to source-multi1,
 * and mnt-subtree with source-multi1 and source-multi2 bind-mounted inside.
 *
 * @param fx The fixture.
 */
export function buildTree(fx: Fixture): void {
  for (const [dir, files] of Object.entries(TREE)) {
    fx.mkdir(dir);
    for (const [file, uid, gid] of files) fx.file(`${dir}/${file}`, uid, gid);
  }
  Deno.symlinkSync("source-multi1", `${fx.dir}/source-multi1-symlink`);
  for (const sub of ["multi1", "multi2"]) {
    const target = fx.mkdir(`mnt-subtree/${sub}`);
    mount(`${fx.dir}/source-${sub}`, target, null, MS_BIND, null);
    fx.track(target);
  }
}

/**
 * Attaches a mount source at a new directory in the fixture.
 *
 * @param fx The fixture.
 * @param source The mount source.
 * @param rel Where, relative to the fixture.
 * @returns The absolute mount point.
 */
export function attachAt(fx: Fixture, source: MountSource, rel: string): string {
  const target = fx.mkdir(rel);
  attachMountSource(source, target);
  fx.track(target);
  return target;
}

/**
 * Ranges from `[containerID, hostID, size]` triples.
 *
 * @param triples The ranges.
 * @returns IDMaps.
 */
export function ranges(...triples: [number, number, number][]): IDMap[] {
  return triples.map(([containerID, hostID, size]) => ({ containerID, hostID, size }));
}

/**
 * A test that mounts: it runs in a fresh fixture, only where this process may
 * mount and map a range of ids, and fails if it leaves an fd or a process.
 *
 * @param name The test name.
 * @param fn The body.
 * @param reasons More reasons to skip, `undefined` where there is none.
 */
export function mountTest(
  name: string,
  fn: (fx: Fixture) => Promise<void> | void,
  ...reasons: (string | undefined)[]
): void {
  Deno.test({
    ...skipUnless(name, CANNOT_MOUNT, NO_ID_RANGE, ...reasons),
    fn: leavesNothing(async () => {
      using fx = Fixture.create();
      await fn(fx);
    }),
  });
}
