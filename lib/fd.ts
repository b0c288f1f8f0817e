/**
 * Owned file descriptors.
 *
 * @module
 */

import { close, dupCloexec } from "../ffi/syscalls.ts";

/**
 * A raw fd that this process owns and must close: a mount source, a user
 * namespace, a detached mount. Deno's resource table does not see it.
 *
 * @example Close an fd with `using`
 * ```ts
 * import { Handles, OwnedFd } from "@mountfd/mountfd";
 *
 * using handles = new Handles();
 * using userns: OwnedFd = await handles.get({
 *   uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 * });
 * console.log(`user namespace fd ${userns.fd}`);
 * ```
 */
export class OwnedFd {
  #fd: number;

  /**
   * Takes ownership of `fd`.
   *
   * @param fd An open fd, which this object now closes.
   * @throws {TypeError} If `fd` is not a non-negative integer.
   */
  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) {
      throw new TypeError(`Invalid fd: expected a non-negative integer, got ${fd}`);
    }
    this.#fd = fd;
  }

  /** The fd number, or -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Whether {@linkcode OwnedFd.close} has been called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Closes the fd. Calling it again does nothing. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    close(fd);
  }

  /**
   * A new, independent fd for the same file, with close-on-exec set.
   *
   * @returns The copy, which the caller closes.
   * @throws {TypeError} If this fd is closed.
   * @throws {MountError} With op `"fcntl(F_DUPFD_CLOEXEC)"` if the dup fails.
   */
  dup(): OwnedFd {
    if (this.#fd < 0) throw new TypeError("Cannot dup a closed fd");
    return new OwnedFd(dupCloexec(this.#fd));
  }

  /** Closes the fd; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Shows the fd, for `console.log`.
   *
   * @param inspect Deno's inspect function.
   * @param options Its options.
   * @returns Such as `OwnedFd { fd: 21 }`.
   */
  [Symbol.for("Deno.customInspect")](
    inspect: typeof Deno.inspect,
    options: Deno.InspectOptions,
  ): string {
    return `OwnedFd ${inspect(this.closed ? { closed: true } : { fd: this.#fd }, options)}`;
  }
}
