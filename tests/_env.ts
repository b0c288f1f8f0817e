/**
 * The environment a test runs in: privilege mode, the ids this user
 * namespace maps, and why a test that needs more can't run.
 *
 * @module
 */

/** The id ranges of this process's user namespace, from /proc/self/uid_map. */
function readMap(path: string): { inside: number; outside: number; size: number }[] {
  return Deno.readTextFileSync(path).trim().split("\n").map((line) => {
    const [inside, outside, size] = line.trim().split(/\s+/).map(Number);
    return { inside, outside, size };
  });
}

const uidMap = readMap("/proc/self/uid_map");

/** `"root"` in the initial user namespace, `"rootless"` in a child one. */
export const MODE: "root" | "rootless" =
  uidMap.length === 1 && uidMap[0].inside === 0 && uidMap[0].outside === 0 &&
    uidMap[0].size === 4294967295
    ? "root"
    : "rootless";

/** How many uids this namespace maps: 1 without a subordinate range. */
export const MAPPED_IDS: number = uidMap.reduce((n, { size }) => n + size, 0);

/** The id the kernel shows for an unmapped one. */
export const OVERFLOW_ID: number = Number(
  Deno.readTextFileSync("/proc/sys/kernel/overflowuid").trim(),
);

/**
 * Why this process may not mount, or `undefined` if it may: it must be root
 * of its user namespace, in a mount namespace of its own.
 */
export const CANNOT_MOUNT: string | undefined = (() => {
  if (Deno.uid() !== 0) return "not root of its user namespace";
  let parent: string | undefined;
  try {
    parent = Deno.readLinkSync(`/proc/${Deno.ppid}/ns/mnt`);
  } catch {
    // Unreadable from a child user namespace: a mount namespace of its own.
  }
  if (parent === Deno.readLinkSync("/proc/self/ns/mnt")) {
    return "in the mount namespace of the parent process; run the suite with " +
      "`deno task test`, which gives it a private one";
  }
  return undefined;
})();

/** Why tests that need a range of ids can't run, or `undefined` if they can. */
export const NO_ID_RANGE: string | undefined = MAPPED_IDS >= 65536
  ? undefined
  : `this user namespace maps ${MAPPED_IDS} id(s); a subordinate id range ` +
    "(/etc/subuid, /etc/subgid) is needed";

/**
 * The name and `ignore` of a test that runs only where none of `reasons`
 * holds. A skipped test carries its reason in its name, so the report says
 * why on the test's own line: `name (skipped: reason) ... ignored`.
 *
 * @param name The test name.
 * @param reasons Reasons it can't run, `undefined` where there is none.
 * @returns The name to give the test, and whether to ignore it.
 */
export function skipUnless(
  name: string,
  ...reasons: (string | undefined)[]
): { name: string; ignore: boolean } {
  const reason = reasons.find((r) => r !== undefined);
  return reason === undefined
    ? { name, ignore: false }
    : { name: `${name} (skipped: ${reason})`, ignore: true };
}
