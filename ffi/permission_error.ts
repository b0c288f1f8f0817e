/**
 * A missing Deno permission, named with the flag that grants it.
 *
 * @module
 */

/**
 * A missing permission: which flag is needed, and for what. It is a
 * `Deno.errors.NotCapable`, so `instanceof` checks for that still hold.
 *
 * @example Tell the user which flag to add
 * ```ts
 * import { PermissionError } from "./permission_error.ts";
 * const error = new PermissionError("--allow-ffi", "call open_tree");
 * console.log(error.message); // "needs --allow-ffi to call open_tree"
 * ```
 */
export class PermissionError extends Deno.errors.NotCapable {
  /** The flag that grants the permission, such as `"--allow-ffi"`. */
  readonly flag: string;
  /** What it is needed for, such as `"call open_tree"`. */
  readonly purpose: string;

  /**
   * Builds the error.
   *
   * @param flag The flag that grants the permission.
   * @param purpose What it is needed for.
   * @param options The error this one wraps.
   */
  constructor(flag: string, purpose: string, options?: ErrorOptions) {
    super(`needs ${flag} to ${purpose}`, options);
    this.name = "NotCapable";
    this.flag = flag;
    this.purpose = purpose;
  }

  /**
   * The same error, said of a public function: `"mountFd needs --allow-ffi
   * to call open_tree"`. The outermost function names itself last. Any other
   * error is returned as it is.
   *
   * @param error What was thrown.
   * @param api The public function that was called.
   * @returns The error to throw.
   */
  static in(error: unknown, api: string): unknown {
    if (!(error instanceof PermissionError)) return error;
    const named = new PermissionError(error.flag, error.purpose, { cause: error.cause });
    named.message = `${api} needs ${error.flag} to ${error.purpose}`;
    return named;
  }
}
