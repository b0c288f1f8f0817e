/**
 * A Varlink service on a listening Unix socket: calls in, replies out, fds
 * both ways, every peer bounded in what it sends, how long it takes, and how
 * many connect at once. No call waits on another peer's.
 *
 * @module
 */

import type { OwnedFd } from "../fd.ts";
import type { PeerCredentials, UnixConnection, UnixListener } from "../socket/unix.ts";
import { encodeMessage, MessageReader, type WireLimits } from "../socket/message.ts";
import { VarlinkError } from "./error.ts";

/**
 * What a method is given beside its parameters.
 *
 * @example A method that reads its caller
 * ```ts
 * import type { VarlinkCall } from "@mountfd/mountfd/broker";
 * const method = (_: Record<string, unknown>, call: VarlinkCall) =>
 *   Promise.resolve({ parameters: { uid: call.peer.uid } });
 * ```
 */
export interface VarlinkCall {
  /** The qualified method name. */
  method: string;
  /** The caller's pid, uid and gid (`SO_PEERCRED`), in this process's namespaces. */
  peer: PeerCredentials;
  /** The caller's pidfd (`SO_PEERPIDFD`), where the kernel has it. */
  pidfd: OwnedFd | undefined;
  /** The fds sent with the call: closed when the method returns. */
  fds: readonly OwnedFd[];
  /** Aborted when the call runs out of time or the service stops. */
  signal: AbortSignal;
  /** Adds text to the call's log line. */
  log(text: string): void;
}

/**
 * A method's reply: its parameters, and fds that the service sends and then
 * closes.
 *
 * @example Reply with an fd
 * ```ts
 * import type { OwnedFd } from "@mountfd/mountfd";
 * import type { VarlinkReply } from "@mountfd/mountfd/broker";
 * declare const fd: OwnedFd;
 * const reply: VarlinkReply = { parameters: { mountFileDescriptor: 0 }, fds: [fd] };
 * ```
 */
export interface VarlinkReply {
  /** The reply's parameters. */
  parameters?: Record<string, unknown>;
  /** Fds to send with it, in index order; the service closes them. */
  fds?: OwnedFd[];
}

/**
 * A method: throw a {@linkcode VarlinkError} to reply with an error.
 *
 * @example
 * ```ts
 * import type { VarlinkMethod } from "@mountfd/mountfd/broker";
 * const ping: VarlinkMethod = (parameters) => Promise.resolve({ parameters });
 * ```
 */
export type VarlinkMethod = (
  parameters: Record<string, unknown>,
  call: VarlinkCall,
) => Promise<VarlinkReply>;

/**
 * What a service says of itself in `org.varlink.service.GetInfo`, and its
 * bounds.
 *
 * @example
 * ```ts
 * import type { VarlinkServiceOptions } from "@mountfd/mountfd/broker";
 * const options: VarlinkServiceOptions = { product: "example", maxConnections: 16 };
 * ```
 */
export interface VarlinkServiceOptions extends Partial<WireLimits> {
  /** GetInfo's vendor. */
  vendor?: string;
  /** GetInfo's product. */
  product?: string;
  /** GetInfo's version. */
  version?: string;
  /** GetInfo's url. */
  url?: string;
  /** Connections at once; more are closed at accept (default 256). */
  maxConnections?: number;
  /** Ms a connection may wait between calls, or for the rest of one (default 10000). */
  idleTimeout?: number;
  /** Ms a method may take (default 30000): then its call is aborted. */
  callTimeout?: number;
  /** Ms a connection may stay in all (default 300000). */
  connectionTimeout?: number;
  /** Where each call's log line goes (default: stderr). */
  log?: (line: string) => void;
}

const SERVICE = "org.varlink.service";

/**
 * A Varlink service: methods by qualified name, interface descriptions for
 * `GetInterfaceDescription`, served on a listener until it closes.
 *
 * @example Serve one method
 * ```ts
 * import { UnixListener } from "@mountfd/mountfd";
 * import { VarlinkService } from "@mountfd/mountfd/broker";
 *
 * const service = new VarlinkService({ product: "example" });
 * service.addInterface("org.example.ping", "interface org.example.ping\nmethod Ping() -> ()\n");
 * service.addMethod("org.example.ping.Ping", () => Promise.resolve({}));
 * using listener = UnixListener.listen("/tmp/example.sock");
 * setTimeout(() => listener.close(), 1000);
 * await service.serve(listener);
 * ```
 */
export class VarlinkService {
  readonly #methods = new Map<string, VarlinkMethod>();
  readonly #interfaces = new Map<string, string>();
  readonly #options: Required<Omit<VarlinkServiceOptions, "log">> & {
    log: (line: string) => void;
  };
  readonly #connections = new Set<UnixConnection>();
  readonly #stop = new AbortController();

  /**
   * A service with no methods yet.
   *
   * @param options What GetInfo says, and the bounds.
   */
  constructor(options: VarlinkServiceOptions = {}) {
    this.#options = {
      vendor: options.vendor ?? "mountfd",
      product: options.product ?? "mountfd",
      version: options.version ?? "0",
      url: options.url ?? "https://github.com/mountfd/mountfd",
      maxConnections: options.maxConnections ?? 256,
      idleTimeout: options.idleTimeout ?? 10_000,
      callTimeout: options.callTimeout ?? 30_000,
      connectionTimeout: options.connectionTimeout ?? 300_000,
      maxMessageBytes: options.maxMessageBytes ?? 65536,
      maxFds: options.maxFds ?? 8,
      log: options.log ?? ((line) => console.error(line)),
    };
    this.addInterface(
      SERVICE,
      "interface org.varlink.service\n" +
        "method GetInfo() -> (vendor: string, product: string, version: string, " +
        "url: string, interfaces: []string)\n" +
        "method GetInterfaceDescription(interface: string) -> (description: string)\n" +
        "error InterfaceNotFound (interface: string)\nerror MethodNotFound (method: string)\n" +
        "error MethodNotImplemented (method: string)\n" +
        "error InvalidParameter (parameter: string)\nerror PermissionDenied ()\n",
    );
    this.addMethod(`${SERVICE}.GetInfo`, () =>
      Promise.resolve({
        parameters: {
          vendor: this.#options.vendor,
          product: this.#options.product,
          version: this.#options.version,
          url: this.#options.url,
          interfaces: [...this.#interfaces.keys()],
        },
      }));
    this.addMethod(`${SERVICE}.GetInterfaceDescription`, (parameters) => {
      const name = parameters.interface;
      if (typeof name !== "string") throw invalid("interface");
      const description = this.#interfaces.get(name);
      if (description === undefined) {
        throw new VarlinkError(`${SERVICE}.InterfaceNotFound`, { interface: name });
      }
      return Promise.resolve({ parameters: { description } });
    });
  }

  /**
   * Adds an interface description (Varlink IDL), for GetInfo and
   * GetInterfaceDescription.
   *
   * @param name The interface's name.
   * @param description Its IDL text.
   */
  addInterface(name: string, description: string): void {
    this.#interfaces.set(name, description);
  }

  /**
   * Adds a method.
   *
   * @param name Its qualified name, such as `io.systemd.MountFileSystem.MountDirectory`.
   * @param method The method.
   */
  addMethod(name: string, method: VarlinkMethod): void {
    this.#methods.set(name, method);
  }

  /** The connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * Serves connections from a listener until it closes or {@linkcode stop}
   * is called; then waits for the open connections to end.
   *
   * @param listener A listening socket.
   */
  async serve(listener: UnixListener): Promise<void> {
    const running = new Set<Promise<void>>();
    const stop = () => listener.close();
    this.#stop.signal.addEventListener("abort", stop, { once: true });
    try {
      for (;;) {
        let connection;
        try {
          connection = await listener.accept();
        } catch (error) {
          // EMFILE, ENOBUFS ...: this connection is lost, the service stays up.
          this.#options.log(`accept failed: ${(error as Error).message}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        if (connection === undefined) break;
        if (this.#connections.size >= this.#options.maxConnections) {
          this.#options.log(`refused a connection: ${this.#connections.size} open already`);
          connection.close();
          continue;
        }
        const done = this.#serveConnection(connection).finally(() => running.delete(done));
        running.add(done);
      }
    } finally {
      this.#stop.signal.removeEventListener("abort", stop);
      for (const connection of this.#connections) connection.close();
      await Promise.allSettled([...running]);
    }
  }

  /** Stops serving: the listener closes, and every connection. */
  stop(): void {
    this.#stop.abort();
  }

  async #serveConnection(connection: UnixConnection): Promise<void> {
    this.#connections.add(connection);
    const options = this.#options;
    const reader = new MessageReader(connection, options);
    const end = performance.now() + options.connectionTimeout;
    let peer: PeerCredentials = { pid: 0, uid: -1, gid: -1 };
    let pidfd: OwnedFd | undefined;
    try {
      peer = connection.peer();
      pidfd = connection.peerPidfd();
      for (;;) {
        const deadline = Math.min(end, performance.now() + options.idleTimeout);
        const message = await reader.next({ signal: this.#stop.signal, deadline });
        if (message === undefined) return;
        const ok = await this.#call(connection, message.value, message.fds, peer, pidfd);
        if (!ok) return;
      }
    } catch (error) {
      options.log(
        `peer uid=${peer.uid} pid=${peer.pid}: dropped: ${(error as Error).message}`,
      );
    } finally {
      reader.close();
      pidfd?.close();
      connection.close();
      this.#connections.delete(connection);
    }
  }

  /** One call: runs its method and replies. Returns false to drop the connection. */
  async #call(
    connection: UnixConnection,
    value: unknown,
    fds: OwnedFd[],
    peer: PeerCredentials,
    pidfd: OwnedFd | undefined,
  ): Promise<boolean> {
    const { method, parameters, oneway, more, upgrade } = value as Record<string, unknown>;
    const notes: string[] = [];
    let reply: Record<string, unknown>;
    let replyFds: OwnedFd[] = [];
    const timeout = AbortSignal.timeout(this.#options.callTimeout);
    const signal = AbortSignal.any([timeout, this.#stop.signal]);
    try {
      if (typeof method !== "string") throw invalid("method");
      if (parameters !== undefined && !isObject(parameters)) throw invalid("parameters");
      if (more === true || upgrade === true) {
        throw new VarlinkError(`${SERVICE}.MethodNotImplemented`, { method });
      }
      const handler = this.#methods.get(method);
      if (handler === undefined) throw new VarlinkError(`${SERVICE}.MethodNotFound`, { method });
      const call: VarlinkCall = {
        method,
        peer,
        pidfd,
        fds,
        signal,
        log: (text) => notes.push(text),
      };
      const result = await handler((parameters ?? {}) as Record<string, unknown>, call);
      reply = { parameters: result.parameters ?? {} };
      replyFds = result.fds ?? [];
      notes.push("ok");
    } catch (error) {
      reply = errorReply(error);
      notes.push(String(reply.error) + detailOf(error));
    } finally {
      for (const fd of fds) fd.close();
    }
    this.#options.log(
      `peer uid=${peer.uid} pid=${peer.pid} ${String(method)}: ${notes.join(" ")}`,
    );
    try {
      if (oneway === true) return true;
      await connection.send(encodeMessage(reply), replyFds, {
        deadline: performance.now() + this.#options.idleTimeout,
      });
      return true;
    } catch {
      return false;
    } finally {
      for (const fd of replyFds) fd.close();
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * An `org.varlink.service.InvalidParameter` error.
 *
 * @param parameter The parameter's name.
 * @param detail Why, for the log.
 * @returns The error, to throw.
 */
export function invalid(parameter: string, detail?: string): VarlinkError {
  return new VarlinkError(`${SERVICE}.InvalidParameter`, { parameter }, detail);
}

/**
 * An `org.varlink.service.PermissionDenied` error.
 *
 * @param reason Why, for the log (not sent).
 * @returns The error, to throw.
 */
export function denied(reason: string): VarlinkError {
  return new VarlinkError(`${SERVICE}.PermissionDenied`, {}, reason);
}

function errorReply(error: unknown): Record<string, unknown> {
  if (error instanceof VarlinkError) return { error: error.error, parameters: error.parameters };
  const { errno, code } = error as { errno?: unknown; code?: unknown };
  if (typeof errno === "number" && typeof code === "string") {
    return { error: "io.systemd.System", parameters: { errno, errnoName: code } };
  }
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return { error: "io.systemd.System", parameters: { errno: 110, errnoName: "ETIMEDOUT" } };
  }
  return { error: "io.systemd.System", parameters: { errno: 5, errnoName: "EIO" } };
}

function detailOf(error: unknown): string {
  if (error instanceof VarlinkError) {
    const at = error.message.indexOf(": ");
    return at < 0 ? "" : error.message.slice(at);
  }
  return `: ${(error as Error)?.message ?? String(error)}`;
}
