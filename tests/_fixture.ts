/**
 * A scratch directory for one test, on the real filesystem as root or on a
 * tmpfs when rootless, and file ownership as the tests read it.
 *
 * @module
 */

import { MNT_DETACH } from "../ffi/constants.ts";
import { umount2 } from "../ffi/syscalls.ts";
import { mount } from "./_syscalls.ts";
import { MODE } from "./_env.ts";

/** Owner of a path as `"uid:gid"`, without following a final symlink. */
export function owner(path: string): string {
  const { uid, gid } = Deno.lstatSync(path);
  return `${uid}:${gid}`;
}

/**
 * A scratch directory for one test: on the real filesystem as root, on a
 * tmpfs this process mounts when rootless (the kernel lets a user namespace
 * id-map only a filesystem it owns). It unmounts and removes everything on
 * dispose.
 */
export class Fixture {
  /** The directory. */
  readonly dir: string;
  readonly #mounts: string[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Makes the scratch directory.
   *
   * @returns The fixture.
   */
  static create(): Fixture {
    const fixture = new Fixture(Deno.makeTempDirSync({ prefix: "mountfd-test-" }));
    if (MODE === "rootless") fixture.mountTmpfs(fixture.dir);
    return fixture;
  }

  /**
   * Mounts a tmpfs at `target`, unmounted on dispose.
   *
   * @param target The mount point.
   */
  mountTmpfs(target: string): void {
    mount("tmpfs", target, "tmpfs", 0, "mode=0755,size=16m");
    this.#mounts.push(target);
  }

  /**
   * Notes a mount made at `target`, to detach on dispose.
   *
   * @param target The mount point.
   */
  track(target: string): void {
    this.#mounts.push(target);
  }

  /**
   * Makes a directory (and its parents) inside the fixture.
   *
   * @param rel The path, relative to the fixture.
   * @returns The absolute path.
   */
  mkdir(rel: string): string {
    const path = `${this.dir}/${rel}`;
    Deno.mkdirSync(path, { recursive: true });
    return path;
  }

  /**
   * Writes a file inside the fixture, owned by `uid:gid`.
   *
   * @param rel The path, relative to the fixture.
   * @param uid The owner.
   * @param gid The group.
   * @returns The absolute path.
   */
  file(rel: string, uid = 0, gid = uid): string {
    const path = `${this.dir}/${rel}`;
    Deno.writeTextFileSync(path, rel);
    Deno.chownSync(path, uid, gid);
    return path;
  }

  /** Detaches every mount, innermost first, and removes the directory. */
  [Symbol.dispose](): void {
    for (const target of this.#mounts.reverse()) {
      try {
        umount2(target, MNT_DETACH);
      } catch {
        // Already gone with a parent.
      }
    }
    Deno.removeSync(this.dir, { recursive: true });
  }
}

/**
 * Detaches the mount at `target` (MNT_DETACH).
 *
 * @param target The mount point.
 */
export function MNT_DETACH_UMOUNT(target: string): void {
  umount2(target, MNT_DETACH);
}
