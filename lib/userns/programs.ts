/**
 * The programs this module runs, found by absolute path, and how it spawns
 * them.
 *
 * A program is looked for in the system directories first (`/usr/bin`,
 * `/bin`, `/usr/sbin`, `/sbin`), once; only where none holds it is it left
 * to a `PATH` lookup, done by `execvp` at spawn time. A privileged runtime
 * thus does not run whatever `unshare` comes first in its `PATH`.
 *
 * Deno resolves an `--allow-run=NAME` flag through `PATH` when it starts, to
 * one absolute path; a program is spawned only by a path that flag (or a
 * broader one) grants, and the permission is checked before anything runs.
 *
 * @module
 */

import { O_PATH } from "../../ffi/constants.ts";
import { errnoValue } from "../../ffi/errno.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { PermissionError } from "../../ffi/permission_error.ts";
import { close, open } from "../../ffi/syscalls.ts";

/** Where programs are looked for before `PATH`, in order. */
export const SYSTEM_DIRS: readonly string[] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/**
 * Where `name` is: the first of `dirs` that holds it, as an absolute path, or
 * `name` itself (for `execvp` to look up in `PATH`) if none does.
 *
 * The check opens the path with `O_PATH` through libc, which needs
 * `--allow-ffi` but neither `--allow-read` nor `--allow-env`.
 *
 * @param name A program name, such as `"unshare"`.
 * @param dirs The directories to look in, in order.
 * @returns An absolute path, or `name`.
 * @throws {PermissionError} Without `--allow-ffi`.
 */
export function findProgram(name: string, dirs: readonly string[] = SYSTEM_DIRS): string {
  for (const dir of dirs) {
    const path = `${dir}/${name}`;
    let fd: number;
    try {
      fd = open(path, O_PATH);
    } catch (error) {
      if (error instanceof MountError) continue;
      throw error;
    }
    close(fd);
    return path;
  }
  return name;
}

function granted(command: string): boolean {
  return Deno.permissions.querySync({ name: "run", command }).state === "granted";
}

/**
 * A program this module runs, by name and purpose, found on first use:
 * importing the module looks for nothing.
 */
export class Program {
  /** Its name, such as `"unshare"`. */
  readonly name: string;
  /** What it is for, said in a permission error: `"which ..."`. */
  readonly purpose: string;
  #path: string | undefined;
  #granted = false;

  /**
   * Names a program.
   *
   * @param name Its name.
   * @param purpose What it is for, for a permission error.
   */
  constructor(name: string, purpose: string) {
    this.name = name;
    this.purpose = purpose;
  }

  /**
   * Its absolute path, or its name if no system directory holds it (then
   * `PATH` is searched at spawn time). Found once.
   *
   * @throws {PermissionError} Without `--allow-ffi`, on first use.
   */
  get path(): string {
    return this.#path ??= findProgram(this.name);
  }

  /**
   * Checks, without running anything, that Deno lets this process spawn it.
   * One permission query when it is granted, and none once it was.
   *
   * @throws {PermissionError} Naming the flag: `--allow-run=NAME` when no
   * copy of it is granted; `--allow-run=PATH` when the one granted is another
   * (an earlier one in `PATH`) than the one found in a system directory.
   * Without `--allow-ffi` if the program was not found yet.
   */
  checkPermission(): void {
    // A query costs ~40 µs, on every new mapping's get. Once granted, it is
    // not asked again: Deno grants nothing more without a prompt, and should
    // the permission be revoked, the spawn fails with the same error.
    if (this.#granted) return;
    if (this.#path !== undefined && granted(this.#path)) {
      this.#granted = true;
      return;
    }
    const { name } = this;
    const missing = (): PermissionError =>
      new PermissionError(`--allow-run=${name}`, `spawn ${name}, ${this.purpose}`);
    // Before anything else, and before finding it (which needs --allow-ffi).
    if (!granted(name) && !SYSTEM_DIRS.some((dir) => granted(`${dir}/${name}`))) throw missing();
    const path = this.path;
    if (granted(path)) {
      this.#granted = true;
      return;
    }
    if (path === name) throw missing();
    throw new PermissionError(
      `--allow-run=${path}`,
      `spawn ${path}, ${this.purpose} (--allow-run=${name} allows another ${name}, found first in PATH)`,
    );
  }

  /**
   * Spawns it with `Deno.Command`, by its path, after the permission check.
   *
   * @param args Its arguments.
   * @param options The other `Deno.Command` options.
   * @returns The running child.
   * @throws {PermissionError} As {@linkcode Program.checkPermission}.
   * @throws {MountError} With op `"spawn PATH"`: code `ENOENT` if it is
   * missing, naming where it was looked for.
   */
  spawn(args: string[], options: Omit<Deno.CommandOptions, "args">): Deno.ChildProcess {
    this.checkPermission();
    const path = this.path;
    try {
      return new Deno.Command(path, { ...options, args }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) {
        throw new PermissionError(`--allow-run=${this.name}`, `spawn ${path}, ${this.purpose}`, {
          cause: error,
        });
      }
      const op = `spawn ${path}`;
      if (error instanceof Deno.errors.NotFound) {
        throw new MountError(op, {
          errno: errnoValue("ENOENT"),
          detail: path === this.name
            ? `${path} was not found in ${SYSTEM_DIRS.join(", ")} or PATH`
            : `${path} is gone`,
          cause: error,
        });
      }
      throw new MountError(op, {
        detail: error instanceof Error ? error.message : String(error),
        cause: error,
      });
    }
  }
}

/** `unshare`, which starts a helper in a new user namespace. */
export const UNSHARE: Program = new Program(
  "unshare",
  "which makes user namespaces for id mappings",
);

/** `nsenter`, which joins a user namespace to read its maps. */
export const NSENTER: Program = new Program(
  "nsenter",
  "which reads the mappings of a user namespace it joins",
);

/** `cat`, which `unshare` and `nsenter` run; Deno never spawns it itself. */
export const CAT: Program = new Program("cat", "which unshare and nsenter run");
