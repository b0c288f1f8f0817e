/**
 * The {@linkcode MountNamespace} of `openMountNamespace`: a Worker joined to
 * the namespace, whose calls run one at a time, in call order.
 *
 * @module
 */

import { O_PATH } from "../../ffi/constants.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { PermissionError } from "../../ffi/permission_error.ts";
import { close, open } from "../../ffi/syscalls.ts";
import { abortable, delay, orAbort } from "../async.ts";
import { assertAttach, type AttachOptions } from "../attach.ts";
import {
  assertAttachOptions,
  assertSourceOptions,
  assertTarget,
  assertUnmountOptions,
  checkMount,
} from "../check.ts";
import { OwnedFd } from "../fd.ts";
import { explainSourceError } from "../hints.ts";
import type { Mount, MountSourceType, MountTarget } from "../mount.ts";
import { finishSource, makeSource, MountSource } from "../source.ts";
import type { WireTarget } from "../target.ts";
import type { UnmountOptions } from "../unmount.ts";

/** The ids of what `create` makes. */
type Owner = { uid: number; gid: number };
import { Handles } from "../userns/handles.ts";
import type {
  MountNamespace,
  MountNamespaceRequestOptions,
  MountNamespaceSourceOptions,
} from "./mount_namespace.ts";
import { WORKER_OP, WorkerClient } from "./rpc.ts";

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
  /** The root targets resolve in: of the namespace's process, or the namespace's own. */
  #rootFd: OwnedFd | undefined;
  /** The owner of created mount points, unless a call says otherwise. */
  #owner: Owner | undefined;
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
   * @param process The root of the namespace's process, which this object
   * now owns, and the owner of what `create` makes there; without it, the
   * namespace's own root, and the caller's ids.
   * @returns The namespace joined, as `mnt:[N]`.
   */
  async join(nsFd: number, process?: { root: OwnedFd; owner?: Owner }): Promise<string> {
    this.#rootFd = process?.root;
    this.#owner = process?.owner;
    const { namespace, rootFd } = await this.#client.call("join", {
      nsFd,
      procFd: this.#procFd.fd,
      rootFd: process?.root.fd,
      path: this.path,
    });
    if (rootFd !== undefined) this.#rootFd = new OwnedFd(rootFd);
    this.#namespace = namespace;
    return namespace;
  }

  /**
   * Sends a request to the Worker, in call order: how each call reaches it.
   * A subclass whose Worker adds kinds of its own sends those through it.
   *
   * @param kind The kind.
   * @param body The request.
   * @param api The public call, named in a permission error.
   * @returns The reply.
   */
  protected request(kind: string, body: unknown, api = "MountNamespace.request"): Promise<unknown> {
    return this.#run(undefined, api, () => this.#client.call(kind, body));
  }

  mountFd(mount: Mount, options?: MountNamespaceSourceOptions): Promise<MountSource> {
    let type: MountSourceType;
    try {
      type = checkMount(mount);
      assertSourceOptions(options);
      options?.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(
      options?.signal,
      "MountNamespace.mountFd",
      (signal) => this.#source(mount, type, options?.sourceIn, signal),
    );
  }

  attach(source: MountSource, target: MountTarget, options?: AttachOptions): Promise<void> {
    try {
      assertAttach(source, target, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(
      undefined,
      "MountNamespace.attach",
      () => this.#attach(source, target, options),
    );
  }

  mountInto(
    mount: Mount,
    target: MountTarget,
    options?: MountNamespaceRequestOptions,
  ): Promise<void> {
    let type: MountSourceType;
    try {
      type = checkMount(mount);
      assertTarget(target);
      assertAttachOptions(options, target, true);
      options?.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(options?.signal, "MountNamespace.mountInto", async (signal) => {
      using source = await this.#source(mount, type, options?.sourceIn, signal);
      signal.throwIfAborted();
      await this.#attach(source, target, options);
    });
  }

  unmount(target: MountTarget, options?: UnmountOptions): Promise<void> {
    try {
      assertTarget(target);
      assertUnmountOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const hold: OwnedFd[] = [];
    const request = { target: wireTarget(target, hold), detach: options?.detach === true };
    return this.request("unmount", request, "MountNamespace.unmount")
      .then(noop)
      .finally(() => {
        for (const fd of hold) fd.close();
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
        if (!idle) await orAbort(previous, signal).catch(noop);
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
    type: MountSourceType,
    sourceIn: "caller" | "namespace" | undefined,
    signal: AbortSignal,
  ): Promise<MountSource> {
    const options = { handles: this.#handles, signal };
    try {
      if (sourceIn !== "namespace") {
        // A detached mount, made here: it attaches in any namespace.
        return await makeSource(mount, "open_tree", options);
      }
      const fd = await this.#open(mount, type, signal);
      return await finishSource(new MountSource(type, fd, mount, this.#namespace), options);
    } catch (error) {
      throw explainSourceError(error, mount);
    }
  }

  async #attach(
    source: MountSource,
    target: MountTarget,
    options: AttachOptions | undefined,
  ): Promise<void> {
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
        create: options?.create === true,
        owner: options?.owner ?? this.#owner,
      });
    } finally {
      for (const fd of hold) fd.close();
    }
  }

  /**
   * Opens a source in the namespace. The caller may stop waiting when
   * `signal` aborts: an fd that comes later is closed.
   */
  #open(mount: Mount, type: MountSourceType, signal: AbortSignal): Promise<number> {
    const call = this.#client.call("open", { mount, type });
    return abortable<number>(signal, ({ resolve, reject }) => {
      call.then(({ fd }) => {
        if (!resolve(fd)) close(fd); // it came too late: the caller left
      }, (error) => reject(explainMissingSource(error)));
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
      this.#rootFd?.close();
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
  for (let wait = 1; Date.now() < deadline; wait = Math.min(wait * 2, 50)) {
    let fd: number;
    try {
      fd = open(`/proc/${thread}`, O_PATH);
    } catch {
      return; // ENOENT: it has exited.
    }
    close(fd);
    await delay(wait);
  }
}
