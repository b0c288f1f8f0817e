/**
 * The checked call: how every wrapper passes strings to C and turns a failed
 * call into a {@linkcode MountError}. A wrapper checks its strings, makes the
 * call, reads errno at once and hands both to {@linkcode check}.
 *
 * @module
 */

import { MountError } from "./mount_error.ts";

const encoder = new TextEncoder();

/** The index of the low u32 of a u64 in a Uint32Array over a C struct. */
export const LOW: 0 | 1 = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 0 : 1;

/**
 * The one check after every call: returns `result`, or, for a negative one,
 * throws with `code`, the errno its caller read at once after the call, in
 * its argument list: `check(call(...), errnoView[0], ...)`. No function may
 * run between the two, this one included: a function's entry may handle V8
 * interrupts, a GC among them, which can change errno.
 *
 * @param result What the call returned: -1 with errno set on failure.
 * @param code errno, read right after the call.
 * @param op The operation, for the error.
 * @param source The source path, for the error.
 * @param target The target path, for the error.
 * @returns `result`, when it is not negative.
 * @throws {MountError} With `op` and the errno, when `result` is negative.
 */
export function check(
  result: number,
  code: number,
  op: string,
  source?: string,
  target?: string,
): number {
  if (result >= 0) return result;
  throw new MountError(op, { errno: code, source, target });
}

/**
 * The guard at the C boundary: `value` can be passed to C as a path. The
 * library's own input checks (`lib/check.ts`) say the same first, naming the
 * field; this one holds for every call, whoever makes it.
 *
 * @param value The path.
 * @param what What the path is, for the error message.
 * @throws {TypeError} If `value` is not a string, or holds a NUL byte, which
 * C would silently cut short.
 */
function assertCPath(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Invalid ${what}: expected a string, got ${value === null ? "null" : typeof value}`,
    );
  }
  if (value.includes("\0")) {
    throw new TypeError(
      `Invalid ${what}: contains a NUL byte: ${JSON.stringify(value)}`,
    );
  }
}

/**
 * Encodes a path as a NUL-terminated C string.
 *
 * @param value The path.
 * @param what What the path is, for the error message.
 * @returns The bytes, ending in NUL.
 * @throws {TypeError} For a non-string, or a string with a NUL byte.
 */
export function cString(value: string, what: string): Uint8Array<ArrayBuffer> {
  assertCPath(value, what);
  // The empty path of the *at calls with AT_EMPTY_PATH: one shared NUL.
  if (value.length === 0) return EMPTY;
  return encoder.encode(value + "\0");
}

// One reused buffer for one C string at a time. A wrapper fills it and hands
// it to libc in the same synchronous call; nothing runs in between, and a
// Worker has its own copy of this module. PATH_MAX bytes, NUL included.
const SCRATCH = new Uint8Array(4096);
// The empty path of the *at calls with AT_EMPTY_PATH; libc only reads it.
const EMPTY = new Uint8Array(1);
// The path whose bytes SCRATCH holds, if any.
let scratchPath: string | undefined;

/**
 * A path as C takes it: a string (encoded as UTF-8), or its bytes as they
 * are, such as a symbolic link's target, which need not be UTF-8.
 */
export type CPath = string | Uint8Array;

const lossy = new TextDecoder();

/**
 * A path for a message: bytes that are not UTF-8 shown as U+FFFD.
 *
 * @param path The path.
 * @returns It as text.
 */
export function pathText(path: CPath): string {
  return typeof path === "string" ? path : lossy.decode(path);
}

/** The bytes of a path, NUL-terminated, checked as {@linkcode cString} checks a string. */
function bytesCString(value: Uint8Array, what: string): Uint8Array<ArrayBuffer> {
  if (value.includes(0)) {
    throw new TypeError(`Invalid ${what}: contains a NUL byte: ${JSON.stringify(pathText(value))}`);
  }
  const bytes = new Uint8Array(value.length + 1);
  bytes.set(value);
  return bytes;
}

/**
 * Like {@linkcode cString}, but an ASCII path is copied into a reused buffer
 * instead of a new one: the hot paths (open, open_tree) then allocate
 * nothing. The buffer is valid until the next call; pass it to libc at once.
 * The checks are {@linkcode cString}'s, made first. Bytes are taken as they
 * are.
 */
export function tempCString(value: CPath, what: string): Uint8Array<ArrayBuffer> {
  if (typeof value !== "string") return bytesCString(value, what);
  // The same path as the last call's (a runtime opens one source again and
  // again): checked then, and still in the buffer.
  if (value === scratchPath) return SCRATCH;
  assertCPath(value, what);
  const length = value.length;
  if (length === 0) return EMPTY;
  if (length < SCRATCH.length) {
    let i = 0;
    for (; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) break;
      SCRATCH[i] = code;
    }
    if (i === length) {
      SCRATCH[length] = 0;
      scratchPath = value;
      return SCRATCH;
    }
    scratchPath = undefined;
  }
  return encoder.encode(value + "\0");
}

/** Names for the paths in an error, when the call sees only an fd. */
export interface PathNames {
  /** The mount source, for the message. */
  source?: string;
  /** The mount target, for the message. */
  target?: string;
  /**
   * The name of the operation in the error, where the call's own name says
   * too little, such as `"mount(MS_BIND|MS_REMOUNT)"`.
   */
  op?: string;
}
