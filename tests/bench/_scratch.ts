/**
 * Where the bench runs: a scratch directory it may id-map, and ids it may
 * map, as root or rootless.
 *
 * As root, the scratch directory is a temporary directory on disk. Rootless
 * (root of a user namespace of its own, as under `unshare --user
 * --map-auto --map-root-user --mount`), only a filesystem that namespace owns
 * can be id-mapped: the scratch directory is a tmpfs mounted there. Every id
 * the bench maps is below 65536, within a rootless namespace's range.
 *
 * @module
 */

import { MNT_DETACH } from "../../ffi/constants.ts";
import { umount2 } from "../../ffi/syscalls.ts";
import { mount } from "../_syscalls.ts";
import { MAPPED_IDS, MODE } from "../_env.ts";

/** A directory the bench may id-map. */
export interface Scratch {
  /** `"root"` or `"rootless"`. */
  mode: "root" | "rootless";
  /** The directory. */
  dir: string;
  /** Unmounts (rootless) and removes it. */
  close(): void;
}

/**
 * Makes the scratch directory.
 *
 * @returns It.
 * @throws {Error} When rootless without 65,536 ids, or without a mount
 * namespace of its own: the message says how to run the bench.
 */
export function makeScratch(): Scratch {
  if (MAPPED_IDS < 65536) {
    throw new Error(
      `the bench maps ids up to 65535, and this user namespace maps ${MAPPED_IDS}: ` +
        "run it as root, or under `unshare --user --map-auto --map-root-user --mount` " +
        "with a subordinate id range",
    );
  }
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-bench-" });
  if (MODE === "root") {
    return { mode: MODE, dir, close: () => Deno.removeSync(dir, { recursive: true }) };
  }
  try {
    mount("tmpfs", dir, "tmpfs", 0, "mode=0755");
  } catch (error) {
    Deno.removeSync(dir);
    throw new Error(
      "rootless, the bench id-maps a tmpfs of its own, and could not mount one: " +
        "run it under `unshare --user --map-auto --map-root-user --mount`",
      { cause: error },
    );
  }
  return {
    mode: MODE,
    dir,
    close(): void {
      umount2(dir, MNT_DETACH);
      Deno.removeSync(dir, { recursive: true });
    },
  };
}
