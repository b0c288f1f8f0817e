/**
 * Process spawning, behind the same fault seam as the syscalls.
 *
 * @module
 */

import { errnoValue } from "./errno.ts";
import { MountError } from "./mount_error.ts";
import { PermissionError } from "./permission_error.ts";
import { faulted, takeInjectedErrno } from "./seam.ts";

/**
 * Spawns `command` with `Deno.Command`, turning a failure into a clear error.
 *
 * @param command The program, looked up in `PATH`.
 * @param options The `Deno.Command` options, `args` included.
 * @param purpose What the program is for, said in a permission error.
 * @returns The running child.
 * @throws {MountError} With op `"spawn COMMAND"`: code `ENOENT` when the
 * program is not in `PATH`.
 * @throws {PermissionError} Without `--allow-run`, naming the flag, the
 * program and its purpose.
 *
 * @example Spawn a helper
 * ```ts
 * import { spawn } from "./process.ts";
 * const child = spawn("true", { stdout: "null" }, "to test");
 * await child.status;
 * ```
 */
export function spawn(
  command: string,
  options: Deno.CommandOptions,
  purpose: string,
): Deno.ChildProcess {
  const op = `spawn ${command}`;
  if (faulted(op)) {
    throw new MountError(op, { errno: takeInjectedErrno() });
  }
  try {
    return new Deno.Command(command, options).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new PermissionError(`--allow-run=${command}`, `spawn ${command}, ${purpose}`, {
        cause: error,
      });
    }
    if (error instanceof Deno.errors.NotFound) {
      throw new MountError(op, {
        errno: errnoValue("ENOENT"),
        detail: `${command} was not found in PATH`,
        cause: error,
      });
    }
    throw new MountError(op, {
      detail: error instanceof Error ? error.message : String(error),
      cause: error,
    });
  }
}
