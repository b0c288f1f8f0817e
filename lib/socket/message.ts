/**
 * Messages with fds on a Unix stream socket, as Varlink frames them: JSON
 * objects, each ended by a NUL byte; fds travel with the first byte of the
 * message they belong to.
 *
 * @module
 */

import type { OwnedFd } from "../fd.ts";
import type { Mount } from "../mount.ts";
import type { MountSourceType } from "../mount.ts";
import { MountSource } from "../source.ts";
import type { UnixConnection, WaitOptions } from "./unix.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The bounds of what one peer may send.
 *
 * @example
 * ```ts
 * import type { WireLimits } from "@mountfd/mountfd";
 * const limits: WireLimits = { maxMessageBytes: 65536, maxFds: 8 };
 * ```
 */
export interface WireLimits {
  /** The largest message, NUL included, in bytes. */
  maxMessageBytes: number;
  /** The most fds one message may carry. */
  maxFds: number;
}

/**
 * A message as read: its JSON value and the fds that came with it.
 *
 * @example Take a message, and close its fds
 * ```ts
 * import type { MessageReader, WireMessage } from "@mountfd/mountfd";
 *
 * declare const reader: MessageReader;
 * const message: WireMessage | undefined = await reader.next();
 * message?.fds.forEach((fd) => fd.close());
 * ```
 */
export interface WireMessage {
  /** The parsed JSON. */
  value: unknown;
  /** Its fds, owned by the reader's caller now. */
  fds: OwnedFd[];
}

/**
 * Encodes a value as one message: its JSON and a NUL.
 *
 * @param value A JSON value.
 * @returns The bytes.
 *
 * @example
 * ```ts
 * import { encodeMessage } from "@mountfd/mountfd";
 * encodeMessage({ method: "org.varlink.service.GetInfo" }); // ...GetInfo"}\0
 * ```
 */
export function encodeMessage(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value) + "\0");
}

/**
 * Reads NUL-ended JSON messages from a connection, with their fds, within
 * limits. On any error every fd it holds is closed.
 *
 * @example Read messages until the peer hangs up
 * ```ts
 * import { MessageReader, type UnixConnection } from "@mountfd/mountfd";
 *
 * declare const connection: UnixConnection;
 * const reader = new MessageReader(connection, { maxMessageBytes: 65536, maxFds: 8 });
 * for (let m = await reader.next(); m !== undefined; m = await reader.next()) {
 *   console.log(m.value);
 *   m.fds.forEach((fd) => fd.close());
 * }
 * ```
 */
export class MessageReader {
  readonly #connection: UnixConnection;
  readonly #limits: WireLimits;
  readonly #buffer: Uint8Array;
  #pending: Uint8Array[] = [];
  #size = 0;
  /** Fds by the number of the message they came with. */
  #fds = new Map<number, OwnedFd[]>();
  /** NULs received so far: the number of the message the next byte is in. */
  #nuls = 0;
  /** Messages taken so far. */
  #taken = 0;

  /**
   * A reader of one connection.
   *
   * @param connection The connection.
   * @param limits The largest message and the most fds it may carry.
   */
  constructor(connection: UnixConnection, limits: WireLimits) {
    this.#connection = connection;
    this.#limits = limits;
    this.#buffer = new Uint8Array(Math.min(65536, limits.maxMessageBytes));
  }

  /**
   * The next message.
   *
   * @param options An abort signal, and a deadline for the whole message.
   * @returns The message, or `undefined` at the end of the stream between
   * two messages.
   * @throws {RangeError} For a message over the limits.
   * @throws {SyntaxError} For one that is not a JSON object.
   * @throws {DOMException} A `TimeoutError` past the deadline.
   */
  async next(options: WaitOptions = {}): Promise<WireMessage | undefined> {
    try {
      for (;;) {
        const message = this.#take();
        if (message !== undefined) return message;
        const { data, fds } = await this.#connection.receive({
          ...options,
          buffer: this.#buffer,
          maxFds: this.#limits.maxFds,
        });
        if (fds.length > 0) this.#attach(data, fds);
        if (data.length === 0) {
          if (this.#size === 0 && this.#fds.size === 0) return undefined;
          throw new SyntaxError("The stream ended inside a message");
        }
        for (const byte of data) if (byte === 0) this.#nuls++;
        this.#pending.push(data.slice());
        this.#size += data.length;
      }
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Closes the fds of the messages not yet read. */
  close(): void {
    for (const fds of this.#fds.values()) for (const fd of fds) fd.close();
    this.#fds.clear();
    this.#pending = [];
    this.#size = 0;
  }

  /**
   * Gives a chunk's fds to their message. A read ends with the sendmsg that
   * carried them, whose first byte starts a message: the last message that
   * starts in the chunk, or, if none does, the one it continues.
   */
  #attach(data: Uint8Array, fds: OwnedFd[]): void {
    let owner = this.#nuls;
    const atStart = this.#size === 0 || this.#pending.at(-1)!.at(-1) === 0;
    let starts = atStart ? 1 : 0;
    for (let i = 0; i < data.length - 1; i++) if (data[i] === 0) starts++;
    if (starts > 0) owner += starts - (atStart ? 1 : 0);
    const held = this.#fds.get(owner) ?? [];
    held.push(...fds);
    this.#fds.set(owner, held);
    if (held.length > this.#limits.maxFds) {
      throw new RangeError(`Too many fds in one message: more than ${this.#limits.maxFds}`);
    }
  }

  #take(): WireMessage | undefined {
    let offset = 0;
    for (let i = 0; i < this.#pending.length; i++) {
      const nul = this.#pending[i].indexOf(0);
      if (nul < 0) {
        offset += this.#pending[i].length;
        continue;
      }
      const end = offset + nul;
      if (end + 1 > this.#limits.maxMessageBytes) break;
      const joined = this.#join();
      const text = decoder.decode(joined.subarray(0, end));
      const rest = joined.subarray(end + 1);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#size = rest.length;
      const fds = this.#fds.get(this.#taken) ?? [];
      this.#fds.delete(this.#taken++);
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        for (const fd of fds) fd.close();
        throw error;
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        for (const fd of fds) fd.close();
        throw new SyntaxError("A Varlink message must be a JSON object");
      }
      return { value, fds };
    }
    if (this.#size >= this.#limits.maxMessageBytes) {
      throw new RangeError(
        `Message too long: over ${this.#limits.maxMessageBytes} bytes without a NUL`,
      );
    }
    return undefined;
  }

  #join(): Uint8Array {
    if (this.#pending.length === 1) return this.#pending[0];
    const all = new Uint8Array(this.#size);
    let at = 0;
    for (const part of this.#pending) {
      all.set(part, at);
      at += part.length;
    }
    return all;
  }
}

/**
 * Sends a JSON value with fds as one message (its JSON and a NUL; the fds go
 * with its first byte). The fds stay open here.
 *
 * @param connection The connection.
 * @param value A JSON value.
 * @param fds The fds.
 * @param options An abort signal and a deadline.
 *
 * @example Send a value and an fd
 * ```ts
 * import { sendMessage, UnixConnection } from "@mountfd/mountfd";
 *
 * const [a, b] = UnixConnection.pair();
 * await sendMessage(a, { hello: "world" }, [b.fd]);
 * a.close();
 * b.close();
 * ```
 */
export async function sendMessage(
  connection: UnixConnection,
  value: unknown,
  fds: readonly (OwnedFd | number)[] = [],
  options: WaitOptions = {},
): Promise<void> {
  await connection.send(encodeMessage(value), fds, options);
}

/** What travels with a sent mount source, so that the receiver can rebuild it. */
interface SourceEntry {
  type: MountSourceType;
  mount: Mount;
}

/**
 * Sends mount sources to another process, with a message of the caller's:
 * each source's fd, type and mount. The sources stay open here.
 *
 * @param connection The connection.
 * @param sources The mount sources.
 * @param message Any JSON value to send with them.
 * @param options An abort signal and a deadline.
 *
 * @example Hand a mount source to a child process, as runc hands them to `runc init`
 * ```ts
 * import { mountFd, MS_BIND, MS_RDONLY, sendMountSources, UnixConnection } from "@mountfd/mountfd";
 *
 * declare const connection: UnixConnection;
 * using source = await mountFd({ source: "/srv", destination: "/srv", flags: MS_BIND | MS_RDONLY });
 * await sendMountSources(connection, [source], { container: "web" });
 * ```
 */
export async function sendMountSources(
  connection: UnixConnection,
  sources: readonly MountSource[],
  message: unknown = null,
  options: WaitOptions = {},
): Promise<void> {
  const entries: SourceEntry[] = sources.map(({ type, mount }) => ({ type, mount }));
  await sendMessage(connection, { mountSources: entries, message }, sources, options);
}

/**
 * Receives mount sources that {@linkcode sendMountSources} sent, and its
 * message. Every fd received is owned by the caller, as a
 * {@linkcode MountSource}; on any error all of them are closed.
 *
 * @param reader A reader of the connection (it keeps what follows).
 * @param options An abort signal and a deadline.
 * @returns The sources and the message, or `undefined` at the end of the stream.
 * @throws {SyntaxError} For a message that is not one of sendMountSources'.
 *
 * @example Receive them
 * ```ts
 * import { MessageReader, receiveMountSources, UnixConnection } from "@mountfd/mountfd";
 *
 * declare const connection: UnixConnection;
 * const reader = new MessageReader(connection, { maxMessageBytes: 65536, maxFds: 16 });
 * const received = await receiveMountSources(reader);
 * for (const source of received?.sources ?? []) source.close();
 * ```
 */
export async function receiveMountSources(
  reader: MessageReader,
  options: WaitOptions = {},
): Promise<{ sources: MountSource[]; message: unknown } | undefined> {
  const got = await reader.next(options);
  if (got === undefined) return undefined;
  const { mountSources, message } = got.value as { mountSources?: unknown; message?: unknown };
  try {
    if (!Array.isArray(mountSources) || mountSources.length !== got.fds.length) {
      throw new SyntaxError("Not a message of mount sources: one entry per fd is expected");
    }
    for (const entry of mountSources as SourceEntry[]) {
      if (entry?.type !== "open_tree" && entry?.type !== "plain-open") {
        throw new SyntaxError(`Not a mount source type: ${JSON.stringify(entry?.type)}`);
      }
    }
    const sources: MountSource[] = [];
    try {
      for (const [i, entry] of (mountSources as SourceEntry[]).entries()) {
        sources.push(new MountSource(entry.type, got.fds[i].dup().fd, entry.mount));
      }
    } catch (error) {
      for (const source of sources) source.close();
      throw error;
    }
    return { sources, message };
  } finally {
    for (const fd of got.fds) fd.close();
  }
}
