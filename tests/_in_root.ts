/**
 * The corpus of paths inside a root that `in_root_test.ts` resolves both
 * ways (openat2 and the component walk), and how an outcome is written.
 *
 * @module
 */

import { O_DIRECTORY, O_PATH } from "../ffi/constants.ts";
import { close, mkdirat, open } from "../ffi/syscalls.ts";
import { symlinkat } from "./_syscalls.ts";

/** `u` then the byte 0xFF: not UTF-8. */
export const NOT_UTF8: Uint8Array = Uint8Array.of(0x75, 0xff);

/**
 * Builds the corpus's tree under `root`: directories, a file, and symbolic
 * links of every kind, one of them to a name that is not UTF-8 (`u\xFF`),
 * beside a directory named as its lossy decoding (`u\uFFFD`) would be.
 *
 * @param root An empty directory.
 * @param outside A host directory that nothing may reach.
 */
export function buildCorpus(root: string, outside: string): void {
  Deno.mkdirSync(`${root}/dir/sub`, { recursive: true });
  Deno.writeTextFileSync(`${root}/file`, "file");
  const rootFd = open(root, O_PATH | O_DIRECTORY);
  try {
    mkdirat(rootFd, NOT_UTF8, 0o755);
    Deno.mkdirSync(`${root}/u\uFFFD`);
    symlinkat(NOT_UTF8, rootFd, "nonutf8");
  } finally {
    close(rootFd);
  }
  const links: [string, string][] = [
    ...hostileLinks(outside),
    ["linkfile", "file"],
    ["linkdir", "dir/"],
    ["dangling", "/nowhere/at/all"],
  ];
  for (const [link, to] of links) Deno.symlinkSync(to, `${root}/${link}`);
}

/**
 * Symbolic links that try to leave a root: absolute, relative, through `..`,
 * in loops.
 *
 * @param outside A host directory that nothing may reach.
 * @returns Each link's name, and what it names.
 */
export function hostileLinks(outside: string): [string, string][] {
  return [
    ["abs-out", outside], // an absolute link to a host path
    ["abs-root", "/"],
    ["rel-up", "../../../../../.."],
    ["dir/up", "../../.."],
    ["mid", `/../..${outside}`],
    ["loop1", "loop2"],
    ["loop2", "loop1"],
    ["evil", "/.."],
  ];
}

/** Paths through each of {@linkcode hostileLinks}: a root's tests try them all. */
export const THROUGH_LINKS: readonly string[] = [
  "/abs-out",
  "/abs-root/dir",
  "/rel-up/dir",
  "/dir/up/dir/sub",
  "/mid",
  "/evil/dir",
  "/evil/../evil/dir/sub/../../dir",
  "/loop1",
];

/** The paths tried, each resolved both ways. */
export const CORPUS: readonly string[] = [
  "",
  "/",
  "..",
  "dir",
  "dir/",
  "dir/.",
  "dir/sub/..",
  "file",
  "file/",
  "file/.",
  "file/..",
  "linkfile",
  "linkfile/",
  "linkdir",
  "linkdir/sub/",
  "nonutf8",
  "nonutf8/",
  ...THROUGH_LINKS,
  "dangling",
  "missing",
  "missing/",
  "dir/missing/x",
  "a".repeat(256),
  `dir/${"./".repeat(2040)}`, // 4084 bytes: under PATH_MAX
  "x/".repeat(2100), // 4200 bytes: ENAMETOOLONG, before anything is made
];

/**
 * An outcome as the corpus tests compare them: the device and inode it
 * resolved to, or the errno's name.
 *
 * @param resolve Resolves, returning an fd, or throws a `MountError`.
 * @returns Such as `2049:1234`, or `ENOENT`.
 */
export function outcome(resolve: () => number): string {
  let fd: number;
  try {
    fd = resolve();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === undefined) throw error;
    return code;
  }
  try {
    const { dev, ino } = Deno.statSync(`/proc/self/fd/${fd}`);
    return `${dev}:${ino}`;
  } finally {
    close(fd);
  }
}
