/**
 * Mount sources: a port of runc's `mountFd`.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  MOUNT_ATTR_IDMAP,
  MS_REC,
  O_PATH,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
} from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { mountSetattr, open, openTree } from "../ffi/syscalls.ts";
import { OwnedFd } from "./fd.ts";
import { openNamespaceFile } from "./namespace_file.ts";
import { assertMount, isBind, isIDMapped, type Mount, type MountIDMapping } from "./mount.ts";
import type { Mapping } from "./idmap.ts";
import { Handles, peekUserns } from "./userns.ts";

/**
 * What kind of fd a {@linkcode MountSource} holds: a detached mount from
 * open_tree(2), attached with move_mount(2), or an `O_PATH` fd, attached with
 * a bind mount of `/proc/self/fd/N`.
 *
 * @example Branch on the type
 * ```ts
 * import type { MountSourceType } from "../mod.ts";
 * const type: MountSourceType = "open_tree";
 * ```
 */
export type MountSourceType = "open_tree" | "plain-open";

/**
 * A mount source: an fd from {@linkcode mountFd}, ready to attach.
 *
 * @example Make and close a mount source
 * ```ts
 * import { mountFd, MS_BIND } from "../mod.ts";
 *
 * using source = await mountFd({ source: "/", destination: "/mnt", flags: MS_BIND });
 * console.log(source.type, source.fd); // "plain-open" 42
 * ```
 */
export class MountSource {
  /** `"open_tree"` for an id-mapped bind, `"plain-open"` for a plain one. */
  readonly type: MountSourceType;
  /** The mount it was made from. */
  readonly mount: Mount;
  readonly #fd: OwnedFd;

  /**
   * Wraps an fd that this object now owns.
   *
   * @param type The kind of fd.
   * @param fd The fd.
   * @param mount The mount it was made from.
   */
  constructor(type: MountSourceType, fd: OwnedFd, mount: Mount) {
    this.type = type;
    this.#fd = fd;
    this.mount = mount;
  }

  /** The fd number, or -1 once closed. */
  get fd(): number {
    return this.#fd.fd;
  }

  /** Whether {@linkcode MountSource.close} has been called. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /** Closes the fd. Calling it again does nothing. */
  close(): void {
    this.#fd.close();
  }

  /** Closes the fd; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Shows the type, fd and source, for `console.log`.
   *
   * @param inspect Deno's inspect function.
   * @param options Its options.
   * @returns Such as `MountSource { type: "open_tree", fd: 21, source: "/srv/data" }`.
   */
  [Symbol.for("Deno.customInspect")](
    inspect: typeof Deno.inspect,
    options: Deno.InspectOptions,
  ): string {
    const fd = this.closed ? { closed: true } : { fd: this.fd };
    const { source, destination } = this.mount;
    return `MountSource ${inspect({ type: this.type, ...fd, source, destination }, options)}`;
  }
}

/**
 * Options of {@linkcode mountFd}.
 *
 * @example Share user namespaces across mounts
 * ```ts
 * import { Handles, type MountFdOptions } from "../mod.ts";
 * using handles = new Handles();
 * const options: MountFdOptions = { handles };
 * ```
 */
export interface MountFdOptions {
  /** The user namespace cache; a temporary one is used and released otherwise. */
  handles?: Handles;
  /** Aborts the call; every fd it opened is closed, every helper reaped. */
  signal?: AbortSignal;
}

/** The hint runc gives with an EINVAL from mount_setattr. */
export const IDMAP_EINVAL_HINT =
  "(maybe the filesystem used doesn't support idmap mounts on this kernel?)";

/**
 * Makes a mount source from a bind mount, as runc's `mountFd` does.
 *
 * - A plain bind gives `open(source, O_PATH|O_CLOEXEC)`: type `"plain-open"`.
 * - An id-mapped bind gives a detached mount: `open_tree(OPEN_TREE_CLONE)`,
 *   recursive with `MS_REC`, then `mount_setattr(MOUNT_ATTR_IDMAP)`, recursive
 *   with `idMapping.recursive`: type `"open_tree"`. The user namespace comes
 *   from `idMapping.usernsPath`, or from `options.handles`, or from a
 *   temporary {@linkcode Handles}.
 *
 * Source paths resolve in the caller's mount namespace. Every fd the call
 * opens is close-on-exec, and is closed if it fails.
 *
 * @param mount A bind mount.
 * @param options The user namespace cache, and an abort signal.
 * @returns The mount source, which the caller closes.
 * @throws {TypeError} For a malformed mount, before any syscall.
 * @throws {MountError} For a non-bind mount (`only bind-mounts are
 * supported`), or a failed syscall or helper; an EINVAL from mount_setattr
 * carries the hint that the filesystem may not support id-mapped mounts.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi` (or
 * `--allow-run=unshare` for an id mapping given as lists), naming the flag.
 * @throws The signal's reason, once aborted.
 *
 * @example Make an id-mapped mount source and attach it
 * ```ts
 * import { attachMountSource, mountFd, MS_BIND } from "../mod.ts";
 *
 * using source = await mountFd({
 *   source: "/srv/data",
 *   destination: "/data",
 *   flags: MS_BIND,
 *   idMapping: {
 *     uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *     gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   },
 * });
 * attachMountSource(source, "/mnt/data");
 * ```
 */
export async function mountFd(
  mount: Mount,
  options?: MountFdOptions,
): Promise<MountSource> {
  assertMount(mount);
  options?.signal?.throwIfAborted();
  assertBind(mount);
  try {
    // A plain source is done here, with no further promise hop: the hot path.
    if (!isIDMapped(mount)) {
      return new MountSource("plain-open", new OwnedFd(open(mount.source, O_PATH)), mount);
    }
    const { type, fd } = openSourceFd(mount);
    return await finishMountSource(mount, type, fd, options ?? {});
  } catch (error) {
    throw PermissionError.in(error, "mountFd");
  }
}

/**
 * Refuses a mount that is not a bind mount, as runc does.
 *
 * @param mount A checked mount.
 * @throws {MountError} With op `"mountFd"`: `only bind-mounts are supported`.
 */
export function assertBind(mount: Mount): void {
  if (isBind(mount)) return;
  throw new MountError("mountFd", {
    source: mount.source,
    target: mount.destination,
    detail: "new mount api: only bind-mounts are supported",
  });
}

/**
 * Opens the fd of a mount source in the calling thread's mount namespace:
 * `open(O_PATH)` for a plain bind, a detached clone (`open_tree`, recursive
 * with `MS_REC`) for an id-mapped one, which {@linkcode finishMountSource}
 * then id-maps. Synchronous, so that a Worker joined to another mount
 * namespace can run it on its own thread.
 *
 * @param mount A checked bind mount.
 * @returns The kind of source, and its fd.
 * @throws {MountError} With op `"open"` or `"open_tree(OPEN_TREE_CLONE)"`.
 */
export function openSourceFd(mount: Mount): { type: MountSourceType; fd: OwnedFd } {
  if (!isIDMapped(mount)) {
    return { type: "plain-open", fd: new OwnedFd(open(mount.source, O_PATH)) };
  }
  let treeFlags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
  if (mount.flags & MS_REC) treeFlags |= AT_RECURSIVE;
  return { type: "open_tree", fd: new OwnedFd(openTree(AT_FDCWD, mount.source, treeFlags)) };
}

/**
 * Makes a {@linkcode MountSource} of an fd from {@linkcode openSourceFd}: a
 * detached clone gets its id mapping, with a user namespace from
 * `idMapping.usernsPath` (opened in the caller's mount namespace) or from
 * the handles. The fd is closed if this fails.
 *
 * @param mount The mount the fd was opened for.
 * @param type The kind of fd.
 * @param fd The fd, which the returned source (or this call, on failure) owns.
 * @param options The user namespace cache, and an abort signal.
 * @returns The mount source.
 */
export async function finishMountSource(
  mount: Mount,
  type: MountSourceType,
  fd: OwnedFd,
  options: MountFdOptions,
): Promise<MountSource> {
  if (type === "plain-open") return new MountSource(type, fd, mount);
  try {
    options.signal?.throwIfAborted();
    const idMapping = mount.idMapping!;
    // A cached namespace is used as it is, at once: no dup, no await.
    const cached = options.handles === undefined || idMapping.usernsPath !== undefined
      ? undefined
      : peekUserns(options.handles, idMapping as Mapping);
    if (cached !== undefined) {
      setIDMap(fd, cached, idMapping.recursive === true, mount.source);
    } else {
      using userns = await openUserns(idMapping, options);
      options.signal?.throwIfAborted();
      setIDMap(fd, userns, idMapping.recursive === true, mount.source);
    }
    return new MountSource(type, fd, mount);
  } catch (error) {
    fd.close();
    throw error;
  }
}

const namespaces = new WeakMap<MountSource, string>();

/**
 * Notes the mount namespace a source was opened in, when it is not the one
 * of the main thread: the kernel attaches a plain-open source only there.
 *
 * @param source The source.
 * @param namespace The namespace, as `/proc/thread-self/ns/mnt` names it.
 */
export function setSourceNamespace(source: MountSource, namespace: string): void {
  namespaces.set(source, namespace);
}

/**
 * The mount namespace a source was opened in.
 *
 * @param source The source.
 * @returns Such as `"mnt:[4026532551]"`, or `undefined` for one opened on
 * the main thread.
 */
export function sourceNamespace(source: MountSource): string | undefined {
  return namespaces.get(source);
}

async function openUserns(
  idMapping: MountIDMapping,
  options: MountFdOptions,
): Promise<OwnedFd> {
  const path = idMapping.usernsPath;
  if (path !== undefined) return openNamespaceFile(path, "user");
  const mapping = {
    uidMappings: idMapping.uidMappings!,
    gidMappings: idMapping.gidMappings!,
  };
  if (options.handles !== undefined) {
    return await options.handles.get(mapping, { signal: options.signal });
  }
  using handles = new Handles();
  return await handles.get(mapping, { signal: options.signal });
}

function setIDMap(tree: OwnedFd, userns: OwnedFd, recursive: boolean, source: string): void {
  try {
    mountSetattr(
      tree.fd,
      "",
      recursive ? AT_EMPTY_PATH | AT_RECURSIVE : AT_EMPTY_PATH,
      { attrSet: MOUNT_ATTR_IDMAP, usernsFd: userns.fd },
      { source },
    );
  } catch (error) {
    if (!(error instanceof MountError) || error.code !== "EINVAL") throw error;
    throw new MountError(error.op, {
      errno: error.errno,
      source,
      hint: IDMAP_EINVAL_HINT,
      cause: error,
    });
  }
}
