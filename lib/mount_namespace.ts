/**
 * Another mount namespace: a port of runc's mount source thread
 * (`goCreateMountSources`), as a Worker whose thread joins the namespace.
 *
 * @module
 */

import { O_PATH } from "../ffi/constants.ts";
import { errnoValue } from "../ffi/errno.ts";
import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { assertPath, close, dupCloexec, open } from "../ffi/syscalls.ts";
import { assertSource, explainCrossNamespace } from "./attach.ts";
import { describe } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { openNamespaceFile } from "./namespace_file.ts";
import { assertMount, type Mount } from "./mount.ts";
import {
  assertBind,
  finishMountSource,
  type MountSource,
  type MountSourceType,
  setSourceNamespace,
} from "./mount_fd.ts";
import { assertMountAttrs } from "./mount_into.ts";
import type { WorkerError, WorkerReply, WorkerRequest } from "./mount_namespace_worker.ts";
import { Handles } from "./userns.ts";

/**
 * Options of {@linkcode openMountNamespace}.
 *
 * @example Share a user namespace cache with the rest of the runtime
 * ```ts
 * import { Handles, type MountNamespaceOptions } from "../mod.ts";
 * using handles = new Handles();
 * const options: MountNamespaceOptions = { handles, timeout: 5000 };
 * ```
 */
export interface MountNamespaceOptions {
  /**
   * The user namespaces of id-mapped mounts, made on the main thread. By
   * default the namespace has a cache of its own, released on close.
   */
  handles?: Handles;
  /** How long the Worker may take to start and join the namespace, in ms (default 10000). */
  timeout?: number;
}

/**
 * Options of {@linkcode MountNamespace.mountFd} and
 * {@linkcode MountNamespace.mountInto}.
 *
 * @example Give up after a second
 * ```ts
 * import { MS_BIND, openMountNamespace } from "../mod.ts";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * using source = await ns.mountFd(
 *   { source: "/srv/data", destination: "/data", flags: MS_BIND },
 *   { signal: AbortSignal.timeout(1000) },
 * );
 * ```
 */
export interface MountNamespaceRequestOptions {
  /**
   * Aborts the call while it opens the source; an fd that arrives later is
   * closed. An attach that has reached the Worker is not aborted.
   */
  signal?: AbortSignal;
}

/**
 * A mount namespace joined by a Worker of its own, from
 * {@linkcode openMountNamespace}: mount sources and targets resolve there.
 * Calls run one at a time, in call order, like runc's request channel.
 *
 * If the Worker dies (an uncaught error: it never should), every pending and
 * later call fails with op `"mount namespace worker"`; an fd it was opening
 * at that moment can't be known, so can't be closed.
 *
 * @example Mount into a container's mount namespace
 * ```ts
 * import { MS_BIND, MS_RDONLY, openMountNamespace } from "../mod.ts";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * await ns.mountInto(
 *   { source: "/srv/data", destination: "/data", flags: MS_BIND | MS_RDONLY },
 *   "/data",
 * );
 * ```
 */
export interface MountNamespace {
  /** The namespace file it was opened from. */
  readonly path: string;
  /** Whether {@linkcode MountNamespace.close} has been called, or the Worker died. */
  readonly closed: boolean;
  /**
   * {@linkcode mountFd} in the namespace: the source path resolves there.
   * The user namespace of an id mapping comes from the handles, or from
   * `usernsPath` opened on the main thread. The fd is the caller's, and
   * usable on the main thread; a `"plain-open"` one attaches only in this
   * namespace (the kernel refuses it elsewhere).
   *
   * @param mount A bind mount.
   * @param options An abort signal.
   * @returns The mount source, which the caller closes.
   */
  mountFd(mount: Mount, options?: MountNamespaceRequestOptions): Promise<MountSource>;
  /**
   * {@linkcode attachMountSource} in the namespace: the target resolves
   * there. An `"open_tree"` source from anywhere attaches; a `"plain-open"`
   * one only if it was opened in this namespace.
   *
   * @param source A mount source.
   * @param target The mount point, in the namespace.
   */
  attach(source: MountSource, target: string): Promise<void>;
  /**
   * {@linkcode mountInto} in the namespace: source and target resolve there.
   *
   * @param mount A bind mount.
   * @param target The mount point, in the namespace.
   * @param options An abort signal.
   */
  mountInto(mount: Mount, target: string, options?: MountNamespaceRequestOptions): Promise<void>;
  /**
   * Ends the Worker. Requests not yet answered are rejected; the one the
   * Worker is running is awaited first (up to 10 s), so that an fd it opens
   * is closed, and an attach it makes is reported as it turned out.
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
  /** Closes; for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_TIMEOUT = 10_000;
const CLOSE_GRACE = 10_000;

/**
 * Opens a mount namespace, such as `/proc/PID/ns/mnt` of a container's
 * process, with a dedicated Worker whose thread does `unshare(CLONE_FS)` and
 * `setns(CLONE_NEWNS)` into it, as runc's mount source thread does. The main
 * thread never changes namespace.
 *
 * Inside the namespace, relative paths resolve from its root. User
 * namespaces for id mappings are still made on the main thread.
 *
 * @param nsPath The namespace file.
 * @param options The user namespace cache, and a start-up timeout.
 * @returns The namespace; close it when done.
 * @throws {TypeError} For a bad path or option, before any syscall.
 * @throws {MountError} With op `"open"` for a path that can't be opened,
 * `"open mntns"` for a file that is no mount namespace, `"setns(CLONE_NEWNS)"`
 * (EPERM) without the privilege to join it, `"mount namespace worker"` if the
 * Worker dies or does not start in time.
 *
 * @example Open a container's mount namespace
 * ```ts
 * import { openMountNamespace } from "../mod.ts";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * ```
 */
export async function openMountNamespace(
  nsPath: string,
  options: MountNamespaceOptions = {},
): Promise<MountNamespace> {
  try {
    return await openNamespace(nsPath, options);
  } catch (error) {
    throw PermissionError.in(error, "openMountNamespace");
  }
}

async function openNamespace(
  nsPath: string,
  options: MountNamespaceOptions,
): Promise<MountNamespace> {
  assertPath(nsPath, "nsPath");
  const { timeout = DEFAULT_TIMEOUT } = options;
  if (!(timeout > 0)) {
    throw new TypeError(
      `Invalid timeout: expected a positive number of ms, got ${describe(timeout)}`,
    );
  }
  if (options.handles !== undefined && !(options.handles instanceof Handles)) {
    throw new TypeError(`Invalid handles: expected a Handles, got ${describe(options.handles)}`);
  }
  using nsFd = openNamespaceFile(nsPath, "mnt");
  assertWorkerLoadable();
  const procFd = new OwnedFd(open("/proc", O_PATH));
  let worker: Worker;
  try {
    worker = new Worker(WORKER_URL, {
      type: "module",
      name: `mount namespace ${nsPath}`,
    });
  } catch (error) {
    procFd.close();
    throw error;
  }
  const ns = new WorkerMountNamespace(nsPath, worker, procFd, options.handles);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() =>
        reject(
          new MountError(WORKER_OP, {
            errno: errnoValue("ETIMEDOUT"),
            target: nsPath,
            detail: `the worker did not join the namespace within ${timeout} ms`,
          }),
        ), timeout);
    });
    const hello = await Promise.race([ns.request({ kind: "hello" }), late]);
    ns.started(hello.thread!);
    const joined = ns.request({ kind: "join", nsFd: nsFd.fd, procFd: procFd.fd, path: nsPath });
    ns.joined((await Promise.race([joined, late])).namespace!);
  } catch (error) {
    await ns.close();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return ns;
}

const WORKER_URL = new URL("./mount_namespace_worker.ts", import.meta.url);

/**
 * A Worker loads its modules under its own permissions: from files, this
 * module's files need read access. Says so before anything starts.
 */
function assertWorkerLoadable(): void {
  const root = new URL("..", import.meta.url);
  if (root.protocol !== "file:") return;
  const path = decodeURIComponent(root.pathname);
  if (Deno.permissions.querySync({ name: "read", path }).state === "granted") return;
  throw new PermissionError(`--allow-read=${path}`, "load the modules of its Worker");
}

const WORKER_OP = "mount namespace worker";

type Body = WorkerRequest;
type Answer = WorkerReply & { ok: true };

interface Job {
  readonly body: Body;
  /** Whether the caller is answered before the Worker is, on close or abort. */
  readonly abandonable: boolean;
  /** Cleans up after an answer that came when nobody waited any more. */
  readonly late?: (answer: WorkerReply) => void;
  resolve(answer: Answer): void;
  reject(error: unknown): void;
  settled: boolean;
  answered?: () => void;
}

const requests = new WeakMap<MountNamespace, (body: Body) => Promise<Answer>>();

/**
 * Test seam: sends a raw request to the Worker of a namespace, such as
 * `{ kind: "fault", faults: [["move_mount", 1]] }` or `{ kind: "crash" }`.
 *
 * @param ns A namespace from {@linkcode openMountNamespace}.
 * @param body The request.
 * @returns The answer.
 */
export function sendWorkerRequest(ns: MountNamespace, body: WorkerRequest): Promise<unknown> {
  const send = requests.get(ns);
  if (send === undefined) throw new TypeError("Not a namespace from openMountNamespace");
  return send(body);
}

class WorkerMountNamespace implements MountNamespace {
  readonly path: string;
  readonly #worker: Worker;
  readonly #procFd: OwnedFd;
  readonly #handles: Handles;
  readonly #ownHandles: boolean;
  readonly #queue: Job[] = [];
  #current: Job | undefined;
  #nextId = 1;
  #namespace = "";
  #thread: string | undefined;
  #ended: Promise<void> | undefined;
  #failure: MountError | undefined;
  #closing: Promise<void> | undefined;
  /** Aborted, with the reason, when the namespace closes or its Worker dies. */
  readonly #lifetime = new AbortController();
  /** Settles when the last operation called has ended. */
  #tail: Promise<void> = Promise.resolve();
  /** How many operations are running or waiting their turn. */
  #running = 0;

  constructor(path: string, worker: Worker, procFd: OwnedFd, handles: Handles | undefined) {
    this.path = path;
    this.#worker = worker;
    this.#procFd = procFd;
    this.#ownHandles = handles === undefined;
    this.#handles = handles ?? new Handles();
    worker.onmessage = (event: MessageEvent<WorkerReply>) => this.#answer(event.data);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#die(`the worker died: ${event.message}`);
    };
    worker.onmessageerror = () => this.#die("the worker sent a message that could not be read");
    requests.set(this, (body) => this.request(body));
  }

  get closed(): boolean {
    return this.#closing !== undefined || this.#failure !== undefined;
  }

  /** Notes the thread of the Worker, as "PID/task/TID". */
  started(thread: string): void {
    this.#thread = thread;
  }

  /** Notes the namespace the Worker joined. */
  joined(namespace: string): void {
    this.#namespace = namespace;
  }

  mountFd(mount: Mount, options: MountNamespaceRequestOptions = {}): Promise<MountSource> {
    try {
      assertMount(mount);
      options.signal?.throwIfAborted();
      assertBind(mount);
    } catch (error) {
      return Promise.reject(error);
    }
    return named(
      "MountNamespace.mountFd",
      this.#serial(options.signal, (signal) => this.#mountFd(mount, signal)),
    );
  }

  attach(source: MountSource, target: string): Promise<void> {
    try {
      assertSource(source, target);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#serial(undefined, (signal) => this.#attach(source, target, false, signal));
  }

  mountInto(
    mount: Mount,
    target: string,
    options: MountNamespaceRequestOptions = {},
  ): Promise<void> {
    try {
      assertMountAttrs(mount);
      assertPath(target, "target");
      options.signal?.throwIfAborted();
      assertBind(mount);
    } catch (error) {
      return Promise.reject(error);
    }
    return named(
      "MountNamespace.mountInto",
      this.#serial(options.signal, async (signal) => {
        using source = await this.#mountFd(mount, signal);
        signal.throwIfAborted();
        await this.#attach(source, target, true, signal);
      }),
    );
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const error = this.#closedError();
    this.#lifetime.abort(error);
    for (const job of this.#queue.splice(0)) this.#settle(job, error);
    const current = this.#current;
    if (current?.abandonable) this.#settle(current, error);
    // Wait for the answer the Worker is working on only if it needs cleaning
    // up (an fd), or if its caller still waits (an attach).
    const wait = current !== undefined && (current.late !== undefined || !current.abandonable);
    this.#closing = (async () => {
      if (wait && this.#failure === undefined) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          current!.answered = resolve;
          timer = setTimeout(resolve, CLOSE_GRACE);
        });
        clearTimeout(timer);
      }
      await this.#release();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Sends a request once the ones before it are answered.
   *
   * @param body The request.
   * @param options An abort signal, and what to do with an answer nobody
   * waits for any more (a request with one can be abandoned).
   * @returns The answer.
   */
  request(
    body: Body,
    options: { signal?: AbortSignal; late?: (answer: WorkerReply) => void } = {},
  ): Promise<Answer> {
    const { signal, late } = options;
    return new Promise((resolve, reject) => {
      if (this.#failure !== undefined) return reject(this.#failure);
      if (this.#closing !== undefined) return reject(this.#closedError());
      const onAbort = () => {
        if (job.settled) return;
        const queued = this.#queue.indexOf(job);
        if (queued >= 0) this.#queue.splice(queued, 1);
        else if (!job.abandonable) return;
        this.#settle(job, signal!.reason);
      };
      const job: Job = {
        body,
        abandonable: late !== undefined || body.kind === "hello" || body.kind === "join",
        late,
        settled: false,
        resolve: (answer) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(answer);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(job);
      this.#pump();
    });
  }

  /**
   * Runs one operation once the ones called before it have ended, so that
   * mounts happen in call order. It gets a signal that aborts with the
   * caller's, or when the namespace closes; while it waits its turn, either
   * rejects it at once.
   */
  #serial<T>(
    callerSignal: AbortSignal | undefined,
    operation: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const signal = callerSignal === undefined
      ? this.#lifetime.signal
      : AbortSignal.any([callerSignal, this.#lifetime.signal]);
    const previous = this.#tail;
    // With nothing running, the operation starts now, in this turn.
    const idle = this.#running === 0;
    this.#running++;
    let done!: () => void;
    this.#tail = new Promise((resolve) => done = resolve);
    return (async () => {
      try {
        if (!idle) await untilAborted(previous, signal);
        signal.throwIfAborted();
        return await operation(signal);
      } finally {
        this.#running--;
        // The next one starts once this one and all before it have ended.
        void previous.then(done);
      }
    })();
  }

  async #mountFd(mount: Mount, signal: AbortSignal): Promise<MountSource> {
    const answer = await this.request({ kind: "open", mount }, {
      signal,
      late: (answer) => {
        if (answer.ok && answer.fd !== undefined) close(answer.fd);
      },
    });
    const source = await finishMountSource(mount, answer.type!, new OwnedFd(answer.fd!), {
      handles: this.#handles,
      signal,
    });
    if (source.type === "plain-open") setSourceNamespace(source, this.#namespace);
    return source;
  }

  async #attach(
    source: MountSource,
    target: string,
    complete: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    // A copy of the fd for the Worker, so that closing the source meanwhile
    // can't hand it another file.
    using copy = new OwnedFd(dupCloexec(source.fd));
    const body = {
      kind: "attach",
      type: source.type as MountSourceType,
      fd: copy.fd,
      mount: source.mount,
      target,
      complete,
    } as const;
    try {
      await this.request(body, { signal });
    } catch (error) {
      throw explainCrossNamespace(error, source, this.#namespace || undefined);
    }
  }

  #pump(): void {
    if (this.#current !== undefined || this.#failure !== undefined) return;
    const job = this.#queue.shift();
    if (job === undefined) return;
    this.#current = job;
    this.#worker.postMessage({ id: this.#nextId++, ...job.body });
  }

  #answer(reply: WorkerReply): void {
    const job = this.#current;
    if (job === undefined) return;
    this.#current = undefined;
    if (job.settled) job.late?.(reply);
    else if (reply.ok) {
      job.settled = true;
      job.resolve(reply);
    } else this.#settle(job, revive(reply.error));
    job.answered?.();
    this.#pump();
  }

  #settle(job: Job, error: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.reject(error);
  }

  #die(reason: string): void {
    if (this.#failure !== undefined) return;
    this.#failure = new MountError(WORKER_OP, { target: this.path, detail: reason });
    this.#lifetime.abort(this.#failure);
    const current = this.#current;
    this.#current = undefined;
    if (current !== undefined) this.#settle(current, this.#failure);
    for (const job of this.#queue.splice(0)) this.#settle(job, this.#failure);
    current?.answered?.();
    void this.#release();
  }

  /** Ends the Worker, and waits until its thread has exited. */
  #release(): Promise<void> {
    if (this.#ended !== undefined) return this.#ended;
    this.#worker.terminate();
    this.#procFd.close();
    if (this.#ownHandles) this.#handles.release();
    const thread = this.#thread;
    this.#ended = thread === undefined ? Promise.resolve() : threadEnded(thread, CLOSE_GRACE);
    return this.#ended;
  }

  #closedError(): MountError {
    return this.#failure ??
      new MountError(WORKER_OP, { target: this.path, detail: "the mount namespace is closed" });
  }
}

/** Names the public method in a permission error from `promise`. */
async function named<T>(api: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw PermissionError.in(error, api);
  }
}

/** Waits for `promise`, which never rejects, unless `signal` aborts first. */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

/** Rebuilds an error that crossed from the Worker. */
function revive(data: WorkerError): Error {
  if (data.name === "MountError" && data.op !== undefined) {
    const error = new MountError(data.op, {
      errno: data.errno,
      source: data.source,
      target: data.target,
    });
    error.message = data.message;
    return error;
  }
  const error = data.name === "TypeError" ? new TypeError(data.message) : new Error(data.message);
  if (data.name !== error.name) error.name = data.name;
  return error;
}

/**
 * Waits until a thread of this process has exited (its runtime, fds
 * included, is gone then), or `timeout` ms have passed.
 *
 * @param thread The thread, as "PID/task/TID".
 * @param timeout The most to wait, in ms.
 */
async function threadEnded(thread: string, timeout: number): Promise<void> {
  const path = `/proc/${thread}`;
  const deadline = Date.now() + timeout;
  for (let delay = 1; Date.now() < deadline; delay = Math.min(delay * 2, 50)) {
    let fd: number;
    try {
      fd = open(path, O_PATH);
    } catch {
      return; // ENOENT: it has exited.
    }
    close(fd);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
