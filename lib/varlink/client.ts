/**
 * A Varlink client: one call at a time on a Unix stream connection, fds both
 * ways.
 *
 * @module
 */

import type { OwnedFd } from "../fd.ts";
import { UnixConnection, type WaitOptions } from "../socket/unix.ts";
import { encodeMessage, MessageReader } from "../socket/message.ts";
import { VarlinkError } from "./error.ts";

/**
 * Options of {@linkcode VarlinkClient.call}.
 *
 * @example Send an fd, give up after 5 s
 * ```ts
 * import type { OwnedFd, VarlinkCallOptions } from "@mountfd/mountfd";
 * declare const fd: OwnedFd;
 * const options: VarlinkCallOptions = { fds: [fd], timeout: 5000 };
 * ```
 */
export interface VarlinkCallOptions {
  /** Fds to send with the call (they stay open here); parameters index them. */
  fds?: readonly (OwnedFd | number)[];
  /** Aborts the call; the connection is closed then. */
  signal?: AbortSignal;
  /** Ms to wait for the reply (default 30000). */
  timeout?: number;
}

/**
 * A reply: its parameters and the fds that came with it, which the caller
 * owns.
 *
 * @example
 * ```ts
 * import type { VarlinkResult } from "@mountfd/mountfd";
 * declare const result: VarlinkResult;
 * result.fds.forEach((fd) => fd.close());
 * ```
 */
export interface VarlinkResult {
  /** The reply's parameters. */
  parameters: Record<string, unknown>;
  /** Its fds. */
  fds: OwnedFd[];
}

/**
 * A connection to a Varlink service.
 *
 * @example Ask a service what it is
 * ```ts
 * import { VarlinkClient } from "@mountfd/mountfd";
 *
 * using client = await VarlinkClient.connect("/run/mountfd/broker.sock");
 * const { parameters } = await client.call("org.varlink.service.GetInfo");
 * console.log(parameters.interfaces);
 * ```
 */
export class VarlinkClient {
  readonly #connection: UnixConnection;
  readonly #reader: MessageReader;
  #busy: Promise<unknown> = Promise.resolve();

  private constructor(connection: UnixConnection) {
    this.#connection = connection;
    this.#reader = new MessageReader(connection, { maxMessageBytes: 1 << 24, maxFds: 253 });
  }

  /**
   * Connects to a service.
   *
   * @param path The service's socket.
   * @param options An abort signal and a deadline.
   * @returns The client.
   * @throws {MountError} With op `"connect"`.
   */
  static async connect(path: string, options: WaitOptions = {}): Promise<VarlinkClient> {
    return new VarlinkClient(await UnixConnection.connect(path, options));
  }

  /**
   * Calls a method and waits for its reply. Calls on one client run in turn.
   *
   * @param method The qualified method name.
   * @param parameters Its parameters.
   * @param options Fds to send, an abort signal, a timeout.
   * @returns The reply's parameters and fds.
   * @throws {VarlinkError} For an error reply, by its name.
   * @throws {MountError} For a failed socket call.
   */
  call(
    method: string,
    parameters: Record<string, unknown> = {},
    options: VarlinkCallOptions = {},
  ): Promise<VarlinkResult> {
    const run = this.#busy.then(() => this.#call(method, parameters, options));
    this.#busy = run.catch(() => {});
    return run;
  }

  async #call(
    method: string,
    parameters: Record<string, unknown>,
    options: VarlinkCallOptions,
  ): Promise<VarlinkResult> {
    const deadline = performance.now() + (options.timeout ?? 30_000);
    const wait = { signal: options.signal, deadline };
    try {
      await this.#connection.send(encodeMessage({ method, parameters }), options.fds ?? [], wait);
      const reply = await this.#reader.next(wait);
      if (reply === undefined) throw new Error(`No reply to ${method}: the service hung up`);
      const { error, parameters: out } = reply.value as Record<string, unknown>;
      const values = (typeof out === "object" && out !== null ? out : {}) as Record<
        string,
        unknown
      >;
      if (typeof error === "string") {
        for (const fd of reply.fds) fd.close();
        throw new VarlinkError(error, values);
      }
      return { parameters: values, fds: reply.fds };
    } catch (error) {
      if (!(error instanceof VarlinkError)) this.close();
      throw error;
    }
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    this.#reader.close();
    this.#connection.close();
  }

  /** Closes it; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
