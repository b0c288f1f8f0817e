/**
 * The error type of every failed mount operation.
 *
 * @module
 */

import { errnoDescription, errnoName } from "./errno.ts";

/**
 * What a {@linkcode MountError} is built from.
 *
 * @example Report a failed mount(2)
 * ```ts
 * import { MountError, type MountErrorOptions } from "@mountfd/mountfd";
 * const options: MountErrorOptions = { errno: 2, source: "/srv/data", target: "/mnt" };
 * console.log(new MountError("mount", options).message);
 * // "mount src=/srv/data, dst=/mnt: ENOENT: No such file or directory"
 * ```
 */
export interface MountErrorOptions {
  /** The errno value of the failed call, if a syscall failed. */
  errno?: number;
  /** The mount source involved, for the message. */
  source?: string;
  /** The mount target involved, for the message. */
  target?: string;
  /** The user namespace file involved (`usernsPath`), for the message. */
  userns?: string;
  /** The reason, when it is not an errno (the errno's description by default). */
  detail?: string;
  /** A hint appended to the message, such as a likely cause. */
  hint?: string;
  /** The error this one wraps. */
  cause?: unknown;
}

/**
 * The paths a {@linkcode MountError} names, for `withHint` and `withNames`.
 *
 * @example Name a user namespace file
 * ```ts
 * import type { MountErrorNames } from "./mount_error.ts";
 * const names: MountErrorNames = { userns: "/proc/1234/ns/user" };
 * ```
 */
export type MountErrorNames = Pick<MountErrorOptions, "source" | "target" | "userns">;

/**
 * A failed mount operation: which operation failed, why, and on what.
 *
 * The message reads like runc's: the operation, then `src=` and `dst=`, then
 * the reason after a colon, for example
 * `open_tree(OPEN_TREE_CLONE) src=/data: ENOENT: No such file or directory`.
 *
 * @example Inspect a failure
 * ```ts
 * import { MountError, mountFd, MS_BIND } from "@mountfd/mountfd";
 *
 * try {
 *   await mountFd({ source: "/nonexistent", destination: "/mnt", flags: MS_BIND });
 * } catch (error) {
 *   if (error instanceof MountError && error.code === "ENOENT") {
 *     console.log(`${error.op} failed: no such source`);
 *   }
 * }
 * ```
 */
export class MountError extends Error {
  /** The operation that failed, such as `"mount_setattr"` or `"move_mount"`. */
  readonly op: string;
  /** The errno name, such as `"EINVAL"`, when a syscall failed. */
  readonly code?: string;
  /** The errno value, when a syscall failed. */
  readonly errno?: number;
  /** The mount source involved. */
  readonly source?: string;
  /** The mount target involved. */
  readonly target?: string;
  /** The user namespace file involved, such as a mount's `usernsPath`. */
  readonly userns?: string;
  readonly #detail?: string;
  readonly #hint?: string;

  /**
   * Builds an error for `op`.
   *
   * @param op The operation that failed.
   * @param options The errno, the paths involved and the reason.
   */
  constructor(op: string, options?: MountErrorOptions) {
    const { errno, source, target, userns, hint, cause } = options ?? {};
    const code = errno === undefined ? undefined : errnoName(errno);
    let reason = options?.detail ??
      (errno === undefined ? "failed" : errnoDescription(errno));
    if (code !== undefined) reason = `${code}: ${reason}`;
    if (hint) reason += ` ${hint}`;
    const where = [
      source === undefined ? "" : `src=${source}`,
      target === undefined ? "" : `dst=${target}`,
      userns === undefined ? "" : `userns=${userns}`,
    ].filter(Boolean).join(", ");
    super(`${op}${where ? " " + where : ""}: ${reason}`, { cause });
    this.name = "MountError";
    this.op = op;
    if (code !== undefined) this.code = code;
    if (errno !== undefined) this.errno = errno;
    if (source !== undefined) this.source = source;
    if (target !== undefined) this.target = target;
    if (userns !== undefined) this.userns = userns;
    this.#detail = options?.detail;
    this.#hint = hint || undefined;
  }

  /**
   * The hint the message ends with, if it has one: what the error most
   * likely means, and what to do.
   *
   * @returns Such as `(bind it recursively, with rbind or MS_REC)`.
   */
  get hint(): string | undefined {
    return this.#hint;
  }

  /**
   * The reason given in place of the errno's description, if one was.
   *
   * @returns Such as `new mount api: only bind-mounts are supported`.
   */
  get detail(): string | undefined {
    return this.#detail;
  }

  /**
   * The same error with a hint added to its message: a likely cause, or
   * what to do. The op, errno, reason, source and target stay (unless
   * `names` gives other paths), and this error becomes the cause.
   *
   * @param hint The hint, appended after any the error has already, such as
   * `"(writing \"0 1000 1\")"`.
   * @param names Other paths to name, where the caller knows them better.
   * @returns A new error.
   *
   * @example Say what a failed write was writing
   * ```ts
   * import { MountError } from "@mountfd/mountfd";
   * const error = new MountError("write", { errno: 1, target: "uid_map" });
   * console.log(error.withHint('(writing "0 1000 1")').message);
   * // 'write dst=uid_map: EPERM: Operation not permitted (writing "0 1000 1")'
   * ```
   */
  withHint(hint: string, names: MountErrorNames = {}): MountError {
    return this.#with(names, this.#hint === undefined ? hint : `${this.#hint} ${hint}`);
  }

  /**
   * The same error naming other paths: the ones the caller gave, where the
   * failing call saw another (a component, a `/proc/self/fd/N`).
   *
   * @param names The paths to name instead.
   * @returns A new error, with this one as its cause.
   *
   * @example Name the target as the caller gave it
   * ```ts
   * import { MountError } from "@mountfd/mountfd";
   * const error = new MountError("umount2", { errno: 22, target: "/proc/self/fd/7" });
   * console.log(error.withNames({ target: "/rootfs:/data" }).message);
   * // "umount2 dst=/rootfs:/data: EINVAL: Invalid argument"
   * ```
   */
  withNames(names: MountErrorNames): MountError {
    return this.#with(names, this.#hint);
  }

  /** This error again, with other paths and hint, and itself as the cause. */
  #with(names: MountErrorNames, hint: string | undefined): MountError {
    return new MountError(this.op, {
      errno: this.errno,
      source: names.source ?? this.source,
      target: names.target ?? this.target,
      userns: names.userns ?? this.userns,
      detail: this.#detail,
      hint,
      cause: this,
    });
  }
}
