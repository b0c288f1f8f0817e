/**
 * Unix stream sockets that carry fds: a connection and a listener on raw,
 * nonblocking, close-on-exec fds. A wait for data runs `poll` on another
 * thread, so that the event loop never blocks in a syscall; the calls
 * themselves never wait.
 *
 * @module
 */

import {
  acceptOne,
  adoptSocket,
  bindAndListen,
  closeAll,
  connectTo,
  type PeerCredentials,
  peerCredentials,
  peerPidfd,
  receiveBytes,
  sendBytes,
  shutdownBoth,
  unixSocket,
  unixSocketPair,
} from "../../ffi/socket.ts";
import { POLLIN, POLLOUT, waitFor } from "../../ffi/poll.ts";
import { S_IFMT, S_IFSOCK } from "../../ffi/constants.ts";
import { statOwner } from "../../ffi/owner.ts";
import { OwnedFd } from "../fd.ts";

export type { PeerCredentials } from "../../ffi/socket.ts";

/** The longest single wait for readiness: a deadline or abort is seen within it. */
const SLICE = 250;

/**
 * When a wait ends: an abort signal, and a deadline (`performance.now()` ms).
 *
 * @example Give up after a second
 * ```ts
 * import type { WaitOptions } from "@mountfd/mountfd";
 * const options: WaitOptions = { deadline: performance.now() + 1000 };
 * ```
 */
export interface WaitOptions {
  /** Aborts the wait. */
  signal?: AbortSignal;
  /** The time (`performance.now()`) after which the wait fails with a `TimeoutError`. */
  deadline?: number;
}

/**
 * What one read of a connection gave.
 *
 * @example Read what came, and close its fds
 * ```ts
 * import type { Chunk, UnixConnection } from "@mountfd/mountfd";
 *
 * declare const connection: UnixConnection;
 * const chunk: Chunk = await connection.receive();
 * chunk.fds.forEach((fd) => fd.close());
 * ```
 */
export interface Chunk {
  /** The bytes; empty at the end of the stream. */
  data: Uint8Array;
  /** The fds that came with them, owned by the caller. */
  fds: OwnedFd[];
}

/**
 * A connected Unix stream socket that sends and receives bytes with fds. It
 * owns its fd: close it, or use `using`.
 *
 * @example Pass an fd to the other end of a pair
 * ```ts
 * import { OwnedFd, UnixConnection } from "@mountfd/mountfd";
 *
 * const [left, right] = UnixConnection.pair();
 * const [spare, other] = UnixConnection.pair(); // any fds will do
 * await left.send(new TextEncoder().encode("x"), [spare.fd]);
 * const { data, fds } = await right.receive();
 * console.log(data.length, fds.length); // 1 1
 * fds.forEach((fd: OwnedFd) => fd.close());
 * [left, right, spare, other].forEach((c) => c.close());
 * ```
 */
export class UnixConnection {
  #fd: OwnedFd;
  #waiting = 0;
  #closing = false;

  /**
   * Takes ownership of a connected socket fd (nonblocking, close-on-exec).
   *
   * @param fd The socket.
   */
  constructor(fd: OwnedFd | number) {
    this.#fd = typeof fd === "number" ? new OwnedFd(fd) : fd;
  }

  /**
   * Connects to a listening socket.
   *
   * @param path The socket's path.
   * @param options An abort signal and a deadline (default: 10 s from now),
   * for a full listen queue.
   * @returns The connection.
   * @throws {MountError} With op `"connect"` (ENOENT, ECONNREFUSED, EACCES ...).
   * @throws {DOMException} A `TimeoutError` when the queue stays full past the deadline.
   */
  static async connect(path: string, options: WaitOptions = {}): Promise<UnixConnection> {
    options = { ...options, deadline: options.deadline ?? performance.now() + 10_000 };
    const fd = new OwnedFd(unixSocket());
    try {
      for (;;) {
        try {
          connectTo(fd.fd, path);
          return new UnixConnection(fd);
        } catch (error) {
          if ((error as { code?: string }).code !== "EAGAIN") throw error;
        }
        checkWait(options);
        await new Promise((resolve) => setTimeout(resolve, 5)); // the queue is full
      }
    } catch (error) {
      fd.close();
      throw error;
    }
  }

  /**
   * A connected pair, as socketpair(2) makes it.
   *
   * @returns Both ends.
   */
  static pair(): [UnixConnection, UnixConnection] {
    const [a, b] = unixSocketPair();
    return [new UnixConnection(a), new UnixConnection(b)];
  }

  /** The socket fd, or -1 once closed. */
  get fd(): number {
    return this.#fd.fd;
  }

  /** Whether it is closed. */
  get closed(): boolean {
    return this.#closing || this.#fd.closed;
  }

  /**
   * The peer's credentials at connect (`SO_PEERCRED`).
   *
   * @returns Its pid, uid and gid, in this process's namespaces.
   */
  peer(): PeerCredentials {
    return peerCredentials(this.#live());
  }

  /**
   * A pidfd of the peer (`SO_PEERPIDFD`, Linux 6.5), which stays the same
   * process after its pid is reused.
   *
   * @returns The pidfd, or `undefined` on an older kernel.
   */
  peerPidfd(): OwnedFd | undefined {
    const fd = peerPidfd(this.#live());
    return fd < 0 ? undefined : new OwnedFd(fd);
  }

  /**
   * Sends all of `data`, the fds with its first byte. They stay open here.
   *
   * @param data The bytes.
   * @param fds The fds to send.
   * @param options An abort signal and a deadline.
   * @throws {MountError} With op `"sendmsg"` (EPIPE once the peer is gone).
   * @throws {DOMException} A `TimeoutError` past the deadline.
   */
  async send(
    data: Uint8Array,
    fds: readonly (OwnedFd | number)[] = [],
    options: WaitOptions = {},
  ): Promise<void> {
    let numbers = fds.map((fd) => typeof fd === "number" ? fd : fd.fd);
    if (numbers.some((n) => n < 0)) throw new TypeError("Cannot send a closed fd");
    if (numbers.length > 0 && data.length === 0) {
      throw new TypeError("Cannot send fds without a byte: they travel with the first one");
    }
    let at = 0;
    do {
      const sent = sendBytes(this.#live(), data.subarray(at), numbers);
      if (sent < 0) {
        await this.#wait(POLLOUT, options);
        continue;
      }
      numbers = [];
      at += sent;
    } while (at < data.length);
  }

  /**
   * Receives what has come, waiting for it: at most `buffer.length` bytes,
   * and the fds sent with them.
   *
   * @param options The buffer, the most fds to take, an abort signal and a
   * deadline.
   * @returns The bytes (empty at the end of the stream) and the fds.
   * @throws {RangeError} When more fds came than `maxFds`: those received are
   * closed, the kernel closed the rest.
   * @throws {DOMException} A `TimeoutError` past the deadline.
   */
  async receive(
    options: WaitOptions & { buffer?: Uint8Array; maxFds?: number } = {},
  ): Promise<Chunk> {
    const buffer = options.buffer ?? new Uint8Array(65536);
    const maxFds = options.maxFds ?? 16;
    for (;;) {
      const got = receiveBytes(this.#live(), buffer, maxFds);
      if (got.truncated) {
        closeAll(got.fds);
        throw new RangeError(`Too many fds in one message: more than ${maxFds}`);
      }
      if (got.length >= 0) {
        return { data: buffer.subarray(0, got.length), fds: got.fds.map((fd) => new OwnedFd(fd)) };
      }
      await this.#wait(POLLIN, options);
    }
  }

  /** Closes the socket; a wait in progress ends with an error. Idempotent. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#waiting === 0) this.#fd.close();
    else shutdownBoth(this.#fd.fd); // the wait closes it when it returns
  }

  /** Closes the socket; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #live(): number {
    if (this.closed) throw new Deno.errors.BadResource("The connection is closed");
    return this.#fd.fd;
  }

  async #wait(events: number, options: WaitOptions): Promise<void> {
    checkWait(options);
    const slice = options.deadline === undefined
      ? SLICE
      : Math.max(0, Math.min(SLICE, options.deadline - performance.now()));
    this.#waiting++;
    try {
      await waitFor(this.#fd.fd, events, Math.ceil(slice));
    } finally {
      if (--this.#waiting === 0 && this.#closing) this.#fd.close();
    }
    this.#live();
  }
}

function checkWait(options: WaitOptions): void {
  options.signal?.throwIfAborted();
  if (options.deadline !== undefined && performance.now() >= options.deadline) {
    throw new DOMException("The socket did not become ready in time", "TimeoutError");
  }
}

/**
 * A listening Unix stream socket.
 *
 * @example Listen, and close
 * ```ts
 * import { UnixListener } from "@mountfd/mountfd";
 *
 * using listener = UnixListener.listen("/tmp/example.sock");
 * console.log(`listening on fd ${listener.fd}`);
 * ```
 */
export class UnixListener {
  #fd: OwnedFd;
  #waiting = 0;
  #closing = false;
  /** The path it was bound to, if this process bound it. */
  readonly path: string | undefined;

  /**
   * Takes ownership of a listening socket fd.
   *
   * @param fd The socket (from {@linkcode UnixListener.listen}, or inherited:
   * socket activation's, which is made nonblocking and close-on-exec).
   * @throws {TypeError} When a number is not an open socket.
   * @param path The path it is bound to, if known.
   */
  constructor(fd: OwnedFd | number, path?: string) {
    if (typeof fd === "number") {
      let mode = 0;
      try {
        mode = statOwner(fd).mode;
      } catch {
        // not open
      }
      if ((mode & S_IFMT) !== S_IFSOCK) throw new TypeError(`Not a socket: fd ${fd}`);
    }
    this.#fd = typeof fd === "number" ? new OwnedFd(fd) : fd;
    adoptSocket(this.#fd.fd);
    this.path = path;
  }

  /**
   * Binds a new socket at `path` and listens. An existing file there is an
   * error (EADDRINUSE): remove a stale socket first.
   *
   * @param path The path.
   * @param backlog The queue of connections not yet accepted (default 128).
   * @returns The listener.
   * @throws {MountError} With op `"bind"` or `"listen"`.
   */
  static listen(path: string, backlog: number = 128): UnixListener {
    const fd = new OwnedFd(unixSocket());
    try {
      bindAndListen(fd.fd, path, backlog);
    } catch (error) {
      fd.close();
      throw error;
    }
    return new UnixListener(fd, path);
  }

  /** The socket fd, or -1 once closed. */
  get fd(): number {
    return this.#fd.fd;
  }

  /**
   * Waits for the next connection.
   *
   * @param options An abort signal and a deadline.
   * @returns The connection, or `undefined` once the listener is closed.
   */
  async accept(options: WaitOptions = {}): Promise<UnixConnection | undefined> {
    for (;;) {
      if (this.#closing) return undefined;
      const fd = acceptOne(this.#fd.fd);
      if (fd >= 0) return new UnixConnection(fd);
      checkWait(options);
      this.#waiting++;
      try {
        await waitFor(this.#fd.fd, POLLIN, SLICE);
      } finally {
        if (--this.#waiting === 0 && this.#closing) this.#fd.close();
      }
    }
  }

  /** Stops listening: a pending accept returns `undefined`. Idempotent. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#waiting === 0) this.#fd.close();
    else shutdownBoth(this.#fd.fd);
  }

  /** Closes it; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Closes raw fds this process owns, for an error path.
 *
 * @param fds The fds.
 */
export function closeFds(fds: readonly OwnedFd[]): void {
  for (const fd of fds) fd.close();
}
