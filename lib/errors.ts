/**
 * Errors. Syscall failures are {@linkcode MountError}s, thrown from `ffi/`;
 * bad input is a `TypeError`, raised before any syscall.
 *
 * @module
 */

export { MountError, type MountErrorNames, type MountErrorOptions } from "../ffi/mount_error.ts";

/**
 * Describes a value for an error message: its type, or `null`, or "an array".
 *
 * @param value Anything.
 * @returns A short description.
 *
 * @example Describe a bad argument
 * ```ts
 * import { describe } from "./errors.ts";
 * describe([1]); // "an array"
 * ```
 */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  return typeof value;
}
