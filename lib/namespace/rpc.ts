/**
 * The calls between the main thread and the Worker of a mount namespace:
 * one request and one reply type per kind, errors that cross intact, and a
 * client that matches replies to requests by id.
 *
 * @module
 */

import { MountError, type MountErrorOptions } from "../../ffi/mount_error.ts";
import type { SourceFd } from "../attach.ts";
import type { Mount, MountSourceType } from "../mount.ts";
import type { WireTarget } from "../target.ts";

/** The requests a mount namespace Worker answers, and their replies. */
export interface Calls {
  /** Leave the shared filesystem context and join the namespace. */
  join: {
    /** `rootFd`: the root targets resolve in, pinned by the main thread; else the namespace's. */
    request: { nsFd: number; procFd: number; rootFd?: number; path: string };
    /** `rootFd`: the namespace's root, opened by the Worker when none was given. */
    reply: { namespace: string; rootFd?: number };
  };
  /** Open a mount source in the namespace, of the kind given. */
  open: { request: { mount: Mount; type: MountSourceType }; reply: { fd: number } };
  /** Attach a source fd at a target of the namespace. */
  attach: {
    request: {
      source: SourceFd;
      target: WireTarget;
      create: boolean;
      owner?: { uid: number; gid: number };
    };
    reply: Record<never, never>;
  };
  /** Unmount a target of the namespace. */
  unmount: { request: { target: WireTarget; detach: boolean }; reply: Record<never, never> };
}

/** A request kind. */
export type Kind = keyof Calls;

/** A message to the Worker. */
type RequestMessage = { id: number; kind: string; body: unknown };

/**
 * An error, as it crosses between threads: its name and message, and, for a
 * MountError, its op and the fields it is made of.
 */
export interface WireError extends Omit<MountErrorOptions, "cause"> {
  /** `"MountError"`, `"TypeError"`, or another error name. */
  name: string;
  /** The message, whole. */
  message: string;
  /** A MountError's op. */
  op?: string;
}

/** A message from the Worker: its thread once started, then one reply per request. */
type ReplyMessage =
  | { started: string }
  | { id: number; ok: true; reply: unknown }
  | { id: number; ok: false; error: WireError };

/**
 * Flattens an error to cross to the other thread.
 *
 * @param error What was thrown.
 * @returns Its name, message and MountError fields.
 */
function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const { name, message } = error;
  if (!(error instanceof MountError)) return { name, message };
  const { op, errno, source, target, userns, detail, hint } = error;
  return { name, message, op, errno, source, target, userns, detail, hint };
}

/**
 * Rebuilds an error that crossed from the other thread.
 *
 * @param data The flattened error.
 * @returns A MountError (made again from its fields, so that a hint added
 * later keeps the rest), TypeError or Error with the same message.
 */
function fromWire(data: WireError): Error {
  if (data.name === "MountError" && data.op !== undefined) {
    const { op, errno, source, target, userns, detail, hint } = data;
    return new MountError(op, { errno, source, target, userns, detail, hint });
  }
  const error = data.name === "TypeError" ? new TypeError(data.message) : new Error(data.message);
  if (data.name !== error.name) error.name = data.name;
  return error;
}

/** The handlers of a Worker: one synchronous function per request kind. */
export type Handlers = { [K in Kind]: (request: Calls[K]["request"]) => Calls[K]["reply"] };

interface WorkerScope {
  onmessage: ((event: MessageEvent<RequestMessage>) => void) | null;
  postMessage(message: ReplyMessage): void;
}

/**
 * Serves requests on a Worker's thread, one at a time, in order: posts the
 * thread's name (`PID/task/TID`) first, then one reply per request.
 *
 * @param thread This thread, as `/proc/thread-self` names it.
 * @param handlers The handlers; a test's Worker may add kinds of its own.
 */
export function serve(thread: string, handlers: Handlers): void {
  const scope = globalThis as unknown as WorkerScope;
  scope.onmessage = (event) => {
    const { id, kind, body } = event.data;
    let message: ReplyMessage;
    try {
      const handler = (handlers as unknown as Record<string, (request: unknown) => unknown>)[kind];
      if (handler === undefined) throw new TypeError(`Unknown request: ${kind}`);
      message = { id, ok: true, reply: handler(body) };
    } catch (error) {
      message = { id, ok: false, error: toWire(error) };
    }
    scope.postMessage(message);
  };
  scope.postMessage({ started: thread });
}

/** The op of errors about the Worker itself. */
export const WORKER_OP = "mount namespace worker";

interface Pending {
  resolve(reply: unknown): void;
  reject(error: unknown): void;
}

/**
 * The main thread's end: sends requests, matches replies by id. When the
 * Worker dies or is ended, every pending call is rejected.
 */
export class WorkerClient {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  readonly #started = Promise.withResolvers<string>();
  #nextId = 1;
  #failure: Error | undefined;
  #drained: PromiseWithResolvers<void> | undefined;
  #onDeath: (error: MountError) => void;

  /**
   * Starts a Worker.
   *
   * @param url Its module.
   * @param name Its name, for the debugger.
   * @param target The namespace path, for errors.
   * @param onDeath Called once if the Worker dies of an uncaught error.
   */
  constructor(url: URL, name: string, target: string, onDeath: (error: MountError) => void) {
    this.#onDeath = onDeath;
    this.#worker = new Worker(url, { type: "module", name });
    this.#worker.onmessage = (event: MessageEvent<ReplyMessage>) => this.#receive(event.data);
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#die(new MountError(WORKER_OP, { target, detail: `the worker died: ${event.message}` }));
    };
    this.#worker.onmessageerror = () =>
      this.#die(
        new MountError(WORKER_OP, {
          target,
          detail: "the worker sent a message that could not be read",
        }),
      );
    // Settled by ending or dying too; nobody need wait for it.
    this.#started.promise.catch(() => {});
  }

  /** The Worker's thread, as `PID/task/TID`, once it has started. */
  get started(): Promise<string> {
    return this.#started.promise;
  }

  /**
   * Settles once no call awaits a reply, or `timeout` ms have passed.
   *
   * @param timeout The most to wait, in ms.
   */
  async idle(timeout: number): Promise<void> {
    if (this.#pending.size === 0) return;
    this.#drained ??= Promise.withResolvers<void>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, timeout));
    await Promise.race([this.#drained.promise, late]);
    clearTimeout(timer);
  }

  /**
   * Sends a request.
   *
   * @param kind The kind.
   * @param body The request.
   * @returns The reply; rejected with the Worker's error, or if it dies or
   * is ended first.
   */
  call<K extends Kind>(kind: K, body: Calls[K]["request"]): Promise<Calls[K]["reply"]>;
  /**
   * Sends a request of a kind a test Worker adds.
   *
   * @param kind The kind.
   * @param body The request.
   * @returns The reply.
   */
  call(kind: string, body: unknown): Promise<unknown>;
  call(kind: string, body: unknown): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#pending.set(id, { resolve, reject });
    this.#worker.postMessage({ id, kind, body } satisfies RequestMessage);
    return promise;
  }

  /**
   * Ends the Worker: every pending call is rejected with `error`.
   *
   * @param error The reason.
   */
  end(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#worker.terminate();
    this.#rejectAll(error);
  }

  #receive(message: ReplyMessage): void {
    if ("started" in message) return this.#started.resolve(message.started);
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    if (message.ok) pending.resolve(message.reply);
    else pending.reject(fromWire(message.error));
    if (this.#pending.size === 0) this.#drain();
  }

  #die(error: MountError): void {
    if (this.#failure !== undefined) return;
    this.end(error);
    this.#onDeath(error);
  }

  #rejectAll(error: Error): void {
    this.#started.reject(error);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject } of pending) reject(error);
    this.#drain();
  }

  #drain(): void {
    this.#drained?.resolve();
    this.#drained = undefined;
  }
}
