/**
 * Another mount namespace, such as a running container's: a port of runc's
 * mount source thread (`goCreateMountSources`), as a Worker whose thread
 * joins the namespace.
 *
 * @module
 */

import { errnoValue } from "../../ffi/errno.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { PermissionError } from "../../ffi/permission_error.ts";
import { close, open } from "../../ffi/syscalls.ts";
import { assertPath } from "../check.ts";
import { O_PATH } from "../../ffi/constants.ts";
import { assertAttach, assertAttachOptions, type AttachOptions } from "../attach.ts";
import { assertMount } from "../check.ts";
import { describe } from "../errors.ts";
import { OwnedFd } from "../fd.ts";
import type { Mount } from "../mount.ts";
import { assertBindMount, finishSource, makeSource, MountSource, needsTree } from "../source.ts";
import { assertUnmountOptions, type UnmountOptions } from "../mount_into.ts";
import { WORKER_OP, WorkerClient } from "./rpc.ts";
import { explainSourceError } from "../hints.ts";
import { openNamespaceFile } from "../namespace_file.ts";
import { assertTarget, type MountTarget, type WireTarget } from "../target.ts";
import { Handles } from "../userns/handles.ts";

/**
 * Options of {@linkcode openMountNamespace}.
 *
 * @example Share a user namespace cache with the rest of the runtime
 * ```ts
 * import { Handles, type MountNamespaceOptions } from "@mountfd/mountfd";
 * using handles = new Handles();
 * const options: MountNamespaceOptions = { handles, timeout: 5000, closeTimeout: 2000 };
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
  /**
   * How long close() lets a call the Worker is running finish, in ms
   * (default 10000); past it, the call is rejected and its fds closed.
   */
  closeTimeout?: number;
}

/**
 * Options of {@linkcode MountNamespace.mountFd} and
 * {@linkcode MountNamespace.mountInto}.
 *
 * @example A host directory into a running container, created if missing
 * ```ts
 * import { MS_BIND, openMountNamespace } from "@mountfd/mountfd";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * await ns.mountInto(
 *   { source: "/srv/data", destination: "/data", flags: MS_BIND },
 *   { root: "/", path: "/data" },
 *   { sourceIn: "caller", create: true, signal: AbortSignal.timeout(5000) },
 * );
 * ```
 */
export interface MountNamespaceRequestOptions {
  /**
   * Aborts the call while it waits its turn or opens the source; an fd that
   * arrives later is closed. An attach that has reached the Worker is not
   * aborted.
   */
  signal?: AbortSignal;
  /**
   * Where the source path resolves: `"caller"` (the default), in the
   * caller's mount namespace, as a detached mount made on the main thread
   * with its flags and id mapping, which attaches in any namespace; or
   * `"namespace"`, inside the joined one, as runc does before `pivot_root`.
   */
  sourceIn?: "caller" | "namespace";
  /** Create a missing mount point inside the root of an `InRoot` target. */
  create?: boolean;
}

/**
 * A mount namespace joined by a Worker of its own, from
 * {@linkcode openMountNamespace}: targets resolve there. After setns(2) the
 * Worker's `/` is the namespace's root, so `{ root: "/", path }` keeps a
 * target inside a pivoted container's root. Calls run one at a time, in call
 * order, like runc's request channel.
 *
 * If the Worker dies (an uncaught error: it never should), every pending and
 * later call fails with op `"mount namespace worker"`.
 *
 * @example Add a read-only volume to a running container
 * ```ts
 * import { MS_BIND, MS_RDONLY, openMountNamespace } from "@mountfd/mountfd";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * await ns.mountInto(
 *   { source: "/srv/data", destination: "/data", flags: MS_BIND | MS_RDONLY },
 *   { root: "/", path: "/data" },
 *   { create: true },
 * );
 * ```
 */
export interface MountNamespace {
  /** The namespace file it was opened from. */
  readonly path: string;
  /** Whether {@linkcode MountNamespace.close} has been called, or the Worker died. */
  readonly closed: boolean;
  /**
   * {@linkcode mountFd} for this namespace. With `sourceIn: "caller"` (the
   * default) the source is a detached mount made on the main thread, which
   * attaches anywhere; with `"namespace"` the source path resolves in the
   * namespace, and a `"plain-open"` source attaches only there. The user
   * namespace of an id mapping comes from the handles, or from
   * `usernsPath` opened on the main thread.
   *
   * @param mount A bind mount.
   * @param options An abort signal, and where the source resolves.
   * @returns The mount source, which the caller closes.
   */
  mountFd(mount: Mount, options?: MountNamespaceRequestOptions): Promise<MountSource>;
  /**
   * {@linkcode attachMountSource} in the namespace: the target resolves
   * there, and the source's flags and propagation apply. An `"open_tree"`
   * source from anywhere attaches; a `"plain-open"` one only if it was
   * opened in this namespace.
   *
   * @param source A mount source.
   * @param target The mount point, in the namespace.
   * @param options Whether to create a missing mount point in the root.
   */
  attach(source: MountSource, target: MountTarget, options?: AttachOptions): Promise<void>;
  /**
   * {@linkcode mountInto} in the namespace: the source from where `sourceIn`
   * says, the target in the namespace.
   *
   * @param mount A bind mount.
   * @param target The mount point, in the namespace.
   * @param options An abort signal, where the source resolves, and whether
   * to create a missing mount point.
   */
  mountInto(
    mount: Mount,
    target: MountTarget,
    options?: MountNamespaceRequestOptions,
  ): Promise<void>;
  /**
   * {@linkcode unmount} in the namespace.
   *
   * @param target The mount point, in the namespace.
   * @param options `detach` for `MNT_DETACH`.
   */
  unmount(target: MountTarget, options?: UnmountOptions): Promise<void>;
  /**
   * Ends the Worker. Calls not yet started are rejected; one the Worker is
   * running may finish within `closeTimeout`, so that an fd it opens is closed
   * and an attach is reported as it turned out; past it, the call is
   * rejected and its fds closed. Calling it again returns the same promise.
   */
  close(): Promise<void>;
  /** Closes; for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_TIMEOUT = 10_000;
const WORKER_URL = new URL("./worker.ts", import.meta.url);
/** The directory of mod.ts, lib/ and ffi/. */
const MODULE_ROOT = new URL("../..", import.meta.url);

/**
 * Opens a mount namespace, such as `/proc/PID/ns/mnt` of a container's
 * process, with a dedicated Worker whose thread does `unshare(CLONE_FS)` and
 * `setns(CLONE_NEWNS)` into it, as runc's mount source thread does. The main
 * thread never changes namespace.
 *
 * Inside the namespace, relative targets resolve from its root. User
 * namespaces for id mappings are made on the main thread.
 *
 * @param nsPath The namespace file.
 * @param options The user namespace cache, and a timeout.
 * @returns The namespace; close it when done.
 * @throws {TypeError} For a bad path or option, before any syscall.
 * @throws {MountError} With op `"open"` for a path that can't be opened,
 * `"open mntns"` for a file that is no mount namespace, `"setns(CLONE_NEWNS)"`
 * (EPERM) without the privilege to join it, `"mount namespace worker"` if the
 * Worker dies or does not start in time.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`, or read access to
 * this module's files (the Worker loads them).
 *
 * @example Open a container's mount namespace
 * ```ts
 * import { openMountNamespace } from "@mountfd/mountfd";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * ```
 */
export async function openMountNamespace(
  nsPath: string,
  options: MountNamespaceOptions = {},
): Promise<MountNamespace> {
  try {
    return await openNamespace(nsPath, options, WORKER_URL);
  } catch (error) {
    throw PermissionError.in(error, "openMountNamespace");
  }
}

/**
 * {@linkcode openMountNamespace} with the Worker's module given: tests run
 * one that adds requests of their own.
 *
 * @param nsPath The namespace file.
 * @param options The user namespace cache, and a timeout.
 * @param workerUrl The Worker's module.
 * @returns The namespace, with {@linkcode WorkerMountNamespace.request}.
 */
export async function openNamespace(
  nsPath: string,
  options: MountNamespaceOptions,
  workerUrl: URL,
): Promise<WorkerMountNamespace> {
  assertPath(nsPath, "nsPath");
  const { timeout = DEFAULT_TIMEOUT, closeTimeout = DEFAULT_TIMEOUT } = options;
  for (const [name, value] of [["timeout", timeout], ["closeTimeout", closeTimeout]] as const) {
    if (!(value > 0)) {
      throw new TypeError(
        `Invalid ${name}: expected a positive number of ms, got ${describe(value)}`,
      );
    }
  }
  if (options.handles !== undefined && !(options.handles instanceof Handles)) {
    throw new TypeError(`Invalid handles: expected a Handles, got ${describe(options.handles)}`);
  }
  using nsFd = openNamespaceFile(nsPath, "mnt");
  assertWorkerLoadable(workerUrl);
  const ns = new WorkerMountNamespace(nsPath, workerUrl, options.handles, closeTimeout);
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
    await Promise.race([ns.join(nsFd.fd), late]);
  } catch (error) {
    await ns.close();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return ns;
}

/**
 * A Worker loads its modules under its own permissions: from files, this
 * module's files need read access. Says so before anything starts.
 */
function assertWorkerLoadable(workerUrl: URL): void {
  if (workerUrl.protocol !== "file:") return;
  const path = decodeURIComponent(MODULE_ROOT.pathname); // the Worker loads lib/ and ffi/
  if (Deno.permissions.querySync({ name: "read", path }).state === "granted") return;
  throw new PermissionError(`--allow-read=${path}`, "load the modules of its Worker");
}

/** A target as it crosses to the Worker: an fd root as its number, dup'd for the call. */
function wireTarget(target: MountTarget, hold: OwnedFd[]): WireTarget {
  if (typeof target === "string" || typeof target.root === "string") return target;
  const root = target.root.dup();
  hold.push(root);
  return { root: { fd: root.fd }, path: target.path };
}

/** The {@linkcode MountNamespace} of {@linkcode openMountNamespace}. */
export class WorkerMountNamespace implements MountNamespace {
  readonly path: string;
  readonly #client: WorkerClient;
  readonly #procFd: OwnedFd;
  readonly #handles: Handles;
  readonly #ownHandles: boolean;
  readonly #timeout: number;
  /** Aborted, with the reason, when the namespace closes or its Worker dies. */
  readonly #lifetime = new AbortController();
  /** Settles once every call made so far has settled: the next one waits for it. */
  #tail: Promise<void> = Promise.resolve();
  /** How many calls have not settled yet. */
  #running = 0;
  #namespace: string | undefined;
  #failure: MountError | undefined;
  #closing: Promise<void> | undefined;
  #released: Promise<void> | undefined;

  /**
   * Starts the Worker; {@linkcode WorkerMountNamespace.join} joins it.
   *
   * @param path The namespace file.
   * @param workerUrl The Worker's module.
   * @param handles The user namespace cache, or `undefined` for one of its own.
   * @param timeout How long close() waits for a running call, and for the
   * Worker's thread to end, in ms.
   */
  constructor(path: string, workerUrl: URL, handles: Handles | undefined, timeout: number) {
    this.path = path;
    this.#timeout = timeout;
    this.#ownHandles = handles === undefined;
    this.#handles = handles ?? new Handles();
    // The host's /proc, for the Worker's plain binds and rollbacks after setns.
    this.#procFd = new OwnedFd(open("/proc", O_PATH));
    try {
      this.#client = new WorkerClient(workerUrl, `mount namespace ${path}`, path, (error) => {
        this.#failure = error;
        this.#lifetime.abort(error);
        void this.#release();
      });
    } catch (error) {
      this.#procFd.close();
      if (this.#ownHandles) this.#handles.release();
      throw error;
    }
  }

  get closed(): boolean {
    return this.#closing !== undefined || this.#failure !== undefined;
  }

  /**
   * Joins the namespace.
   *
   * @param nsFd An fd of the namespace file.
   */
  async join(nsFd: number): Promise<void> {
    const { namespace } = await this.#client.call("join", {
      nsFd,
      procFd: this.#procFd.fd,
      path: this.path,
    });
    this.#namespace = namespace;
  }

  /**
   * Sends a request of any kind, in call order: for tests whose Worker adds
   * kinds of its own.
   *
   * @param kind The kind.
   * @param body The request.
   * @returns The reply.
   */
  request(kind: string, body: unknown): Promise<unknown> {
    return this.#run(undefined, "MountNamespace.request", () => this.#client.call(kind, body));
  }

  mountFd(mount: Mount, options: MountNamespaceRequestOptions = {}): Promise<MountSource> {
    try {
      assertMount(mount);
      assertSourceIn(options.sourceIn);
      options.signal?.throwIfAborted();
      assertBindMount(mount);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(
      options.signal,
      "MountNamespace.mountFd",
      (signal) => this.#source(mount, options.sourceIn, signal),
    );
  }

  attach(source: MountSource, target: MountTarget, options: AttachOptions = {}): Promise<void> {
    try {
      assertAttach(source, target, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(
      undefined,
      "MountNamespace.attach",
      () => this.#attach(source, target, options.create === true),
    );
  }

  mountInto(
    mount: Mount,
    target: MountTarget,
    options: MountNamespaceRequestOptions = {},
  ): Promise<void> {
    try {
      assertMount(mount);
      assertTarget(target);
      assertAttachOptions(options, target);
      assertSourceIn(options.sourceIn);
      options.signal?.throwIfAborted();
      assertBindMount(mount);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(options.signal, "MountNamespace.mountInto", async (signal) => {
      using source = await this.#source(mount, options.sourceIn, signal);
      signal.throwIfAborted();
      await this.#attach(source, target, options.create === true);
    });
  }

  unmount(target: MountTarget, options: UnmountOptions = {}): Promise<void> {
    try {
      assertTarget(target);
      assertUnmountOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(undefined, "MountNamespace.unmount", async () => {
      const hold: OwnedFd[] = [];
      try {
        await this.#client.call("unmount", {
          target: wireTarget(target, hold),
          detach: options.detach === true,
        });
      } finally {
        for (const fd of hold) fd.close();
      }
    });
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#lifetime.abort(this.#failure ?? this.#closedError("the mount namespace is closed"));
    this.#closing = (async () => {
      // A call the Worker is running may finish: an fd it opens is then
      // closed, and an attach reported as it turned out.
      await this.#client.idle(this.#timeout);
      await this.#release();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Runs one operation once those called before it have settled, so that
   * mounts happen in call order. It gets a signal that aborts with the
   * caller's, or when the namespace closes; while it waits its turn, either
   * rejects it at once.
   */
  #run<T>(
    callerSignal: AbortSignal | undefined,
    api: string,
    operation: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (this.closed) {
      return Promise.reject(this.#failure ?? this.#closedError("the mount namespace is closed"));
    }
    const signal = callerSignal === undefined
      ? this.#lifetime.signal
      : AbortSignal.any([callerSignal, this.#lifetime.signal]);
    const previous = this.#tail;
    // With nothing running, the operation starts now, in this turn.
    const idle = this.#running === 0;
    this.#running++;
    const result = (async () => {
      try {
        if (!idle) await untilSettledOrAborted(previous, signal);
        signal.throwIfAborted();
        return await operation(signal);
      } finally {
        this.#running--;
      }
    })();
    const settled = result.then(noop, noop);
    this.#tail = Promise.all([previous, settled]).then(noop);
    return result.catch((error) => Promise.reject(PermissionError.in(error, api)));
  }

  async #source(
    mount: Mount,
    sourceIn: "caller" | "namespace" | undefined,
    signal: AbortSignal,
  ): Promise<MountSource> {
    const options = { handles: this.#handles, signal };
    try {
      if (sourceIn !== "namespace") {
        // A detached mount, made here: it attaches in any namespace.
        return await makeSource(mount, options, true);
      }
      const tree = needsTree(mount);
      const fd = await this.#open(mount, tree, signal);
      const type = tree ? "open_tree" : "plain-open";
      return await finishSource(new MountSource(type, fd, mount, this.#namespace), options);
    } catch (error) {
      throw explainSourceError(error, mount);
    }
  }

  async #attach(source: MountSource, target: MountTarget, create: boolean): Promise<void> {
    // Copies of the fds for the Worker, so that closing the originals
    // meanwhile can't hand it other files.
    using copy = source.dup();
    const hold: OwnedFd[] = [];
    try {
      await this.#client.call("attach", {
        source: {
          type: source.type,
          fd: copy.fd,
          mount: source.mount,
          namespace: source.namespace,
        },
        target: wireTarget(target, hold),
        create,
      });
    } finally {
      for (const fd of hold) fd.close();
    }
  }

  /**
   * Opens a source in the namespace. The caller may stop waiting when
   * `signal` aborts: an fd that comes later is closed.
   */
  #open(mount: Mount, tree: boolean, signal: AbortSignal): Promise<number> {
    const call = this.#client.call("open", { mount, tree });
    return new Promise((resolve, reject) => {
      let abandoned = false;
      const onAbort = () => {
        abandoned = true;
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      call.then(({ fd }) => {
        signal.removeEventListener("abort", onAbort);
        if (abandoned) close(fd);
        else resolve(fd);
      }, (error) => {
        signal.removeEventListener("abort", onAbort);
        if (!abandoned) reject(explainMissingSource(error));
      });
    });
  }

  /** Ends the Worker, and waits until its thread has exited. */
  #release(): Promise<void> {
    this.#released ??= (async () => {
      this.#client.end(
        this.#failure ??
          this.#closedError("the mount namespace was closed while the call ran in its worker"),
      );
      this.#procFd.close();
      if (this.#ownHandles) this.#handles.release();
      const thread = await this.#client.started.catch(() => undefined);
      if (thread !== undefined) await threadEnded(thread, this.#timeout);
    })();
    return this.#released;
  }

  #closedError(detail: string): MountError {
    return new MountError(WORKER_OP, { target: this.path, detail });
  }
}

function noop(): void {}

/** Checks `sourceIn` before any syscall. */
function assertSourceIn(sourceIn: unknown): void {
  if (sourceIn === undefined || sourceIn === "caller" || sourceIn === "namespace") return;
  throw new TypeError(
    `Invalid options.sourceIn: expected "caller" or "namespace", got ${describe(sourceIn)}`,
  );
}

/** Waits for `promise`, which never rejects, unless `signal` aborts first. */
function untilSettledOrAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
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

/** Says where a source that is missing in the namespace was looked for. */
function explainMissingSource(error: unknown): unknown {
  if (!(error instanceof MountError) || error.code !== "ENOENT") return error;
  return error.withHint(
    `(with sourceIn: "namespace" the source is looked up inside the mount namespace, ` +
      `where host paths are gone after pivot_root; a host path needs sourceIn: "caller")`,
  );
}

/**
 * Waits until a thread of this process has exited (its runtime, fds
 * included, is gone then), or `timeout` ms have passed.
 *
 * @param thread The thread, as "PID/task/TID".
 * @param timeout The most to wait, in ms.
 */
async function threadEnded(thread: string, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  for (let delay = 1; Date.now() < deadline; delay = Math.min(delay * 2, 50)) {
    let fd: number;
    try {
      fd = open(`/proc/${thread}`, O_PATH);
    } catch {
      return; // ENOENT: it has exited.
    }
    close(fd);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
