/**
 * Another mount namespace, such as a running container's: what a
 * {@linkcode MountNamespace} does, and its options. `open.ts` opens one;
 * `worker_namespace.ts` is the Worker behind it (runc's mount source thread,
 * `goCreateMountSources`).
 *
 * @module
 */

import type { AttachOptions } from "../attach.ts";
import type { Mount, MountTarget } from "../mount.ts";
import type { MountSource } from "../source.ts";
import type { UnmountOptions } from "../unmount.ts";
import type { Handles } from "../userns/handles.ts";

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
 * Options of {@linkcode MountNamespace.mountFd}.
 *
 * @example A source resolved inside the namespace, as runc does before pivot_root
 * ```ts
 * import { MS_BIND, openMountNamespace } from "@mountfd/mountfd";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * using source = await ns.mountFd(
 *   { source: "/data", destination: "/data", flags: MS_BIND },
 *   { sourceIn: "namespace", signal: AbortSignal.timeout(5000) },
 * );
 * ```
 */
export interface MountNamespaceSourceOptions {
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
}

/**
 * Options of {@linkcode MountNamespace.mountInto}: those of its `mountFd`,
 * and whether to create the mount point.
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
export interface MountNamespaceRequestOptions extends MountNamespaceSourceOptions {
  /** Create a missing mount point inside the root of an `InRoot` target. */
  create?: boolean;
  /**
   * The owner of what `create` makes. Default: the ids that are 0 in the
   * user namespace that owns the joined mount namespace.
   */
  owner?: { uid: number; gid: number };
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
  mountFd(mount: Mount, options?: MountNamespaceSourceOptions): Promise<MountSource>;
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
