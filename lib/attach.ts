/**
 * Attaching mount sources: the target resolved once, to an fd, the source
 * moved onto it, and every later step (propagation, rollback) made through
 * the new mount's own fd, never through the path again.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  AT_RECURSIVE,
  MNT_DETACH,
  MOVE_MOUNT_F_EMPTY_PATH,
  MOVE_MOUNT_T_EMPTY_PATH,
  MS_REC,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  S_IFDIR,
  S_IFMT,
} from "../ffi/constants.ts";
import type { PathNames } from "../ffi/call.ts";
import { fileInfo, mountSetattr, moveMount, openTree } from "../ffi/mount_api.ts";
import { MountError } from "../ffi/mount_error.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { assertAttachOptions, assertTarget } from "./check.ts";
import { describe } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { PROPAGATION_FLAGS, stringifyMountFlags } from "./flags.ts";
import type { Mount, MountSourceType, MountTarget } from "./mount.ts";
import { inThisNamespace } from "./mountinfo.ts";
import { MountSource } from "./source.ts";
import { openTarget, targetName, type WireTarget } from "./target.ts";
import { unmountFd } from "./unmount.ts";
import type { ThreadContext } from "./thread.ts";

/**
 * Options of {@linkcode attachMountSource}.
 *
 * @example Create the mount point inside a rootfs
 * ```ts
 * import type { AttachOptions } from "@mountfd/mountfd";
 * const options: AttachOptions = { create: true };
 * ```
 */
export interface AttachOptions {
  /**
   * Create a missing mount point inside the root of an `InRoot` target:
   * parent directories (0755), then a directory, or an empty file (0644)
   * when the source is not a directory. A dangling symbolic link on the way
   * is followed, inside the root, and what it names is made, as runc does.
   * Default `false`.
   */
  create?: boolean;
  /**
   * The owner of what `create` makes. Default: the caller; in a
   * `MountNamespace` call, the ids that are 0 in the user namespace that
   * owns the joined mount namespace, as runc and crun make them.
   */
  owner?: { uid: number; gid: number };
}

/** A source fd, as a Worker gets it: the fields of a {@linkcode MountSource}. */
export interface SourceFd {
  /** The kind of fd. */
  readonly type: MountSourceType;
  /** The fd, which stays open. */
  readonly fd: number;
  /** The mount it was made for. */
  readonly mount: Mount;
  /** The mount namespace it was opened in, if not the caller's. */
  readonly namespace?: string;
}

/**
 * Attaches a mount source at `target`, in the caller's mount namespace, as
 * the whole mount: the source carries its flags, id mapping and `recAttr`;
 * its propagation is applied right after, through the new mount's fd. If
 * that fails, the mount is detached again.
 *
 * The target is resolved once, to an fd: a string as mount(2) would
 * (following symbolic links), an `InRoot` inside its root, never leading
 * out of it (with `create`, a missing mount point is made there). An
 * `"open_tree"` source is moved there (it is one mount: attaching it again
 * moves it); a `"plain-open"` one is cloned (`open_tree` of its fd) and the
 * clone moved, which the kernel allows only in the mount namespace the
 * source was opened in.
 *
 * @param source A mount source from {@linkcode mountFd}; it stays open.
 * @param target The mount point.
 * @param options Whether to create a missing mount point in the root.
 * @throws {TypeError} For a closed source or a bad target.
 * @throws {MountError} With op `"openat2"` (or `"open"`) for a target that
 * can't be resolved, `"move_mount"` or `"mount_setattr(MS_...)"` if the
 * kernel refuses; an EINVAL from another mount namespace says so.
 *
 * @example Bind a directory read-only into a container's rootfs
 * ```ts
 * import { attachMountSource, mountFd, MS_BIND, MS_RDONLY } from "@mountfd/mountfd";
 *
 * using source = await mountFd({
 *   source: "/srv/data",
 *   destination: "/data",
 *   flags: MS_BIND | MS_RDONLY,
 * });
 * attachMountSource(source, { root: "/run/container/rootfs", path: "/data" }, { create: true });
 * ```
 */
export function attachMountSource(
  source: MountSource,
  target: MountTarget,
  options?: AttachOptions,
): void {
  assertAttach(source, target, options);
  try {
    attachOnThread(source, target, options ?? {}, {});
  } catch (error) {
    throw PermissionError.in(error, "attachMountSource");
  }
}

/**
 * Checks the arguments of an attach, before any syscall.
 *
 * @param source What should be an open mount source.
 * @param target What should be a target.
 * @param options What should be attach options, or `undefined`.
 * @param namespace Whether a `MountNamespace` call takes them.
 * @throws {TypeError} Naming what is wrong.
 */
export function assertAttach(
  source: unknown,
  target: unknown,
  options: unknown,
  namespace = false,
): asserts target is MountTarget {
  if (!(source instanceof MountSource)) {
    throw new TypeError(
      `Invalid source: expected a MountSource from mountFd, got ${describe(source)}`,
    );
  }
  assertTarget(target);
  assertAttachOptions(options, target, namespace);
  if (source.closed) throw new TypeError("Cannot attach a closed mount source");
}

/**
 * Attaches a source fd at a target on the calling thread, synchronously, so
 * that a Worker joined to another mount namespace can run it: resolves the
 * target, moves the source (or a clone of a plain one) onto it, applies the
 * propagation through the new mount's fd, and detaches it again if that
 * fails.
 *
 * @param source The source fd, its kind and mount.
 * @param target A checked target.
 * @param options Whether to create a missing mount point.
 * @param thread What the thread needs to undo an attach.
 * @throws {MountError} Naming the step that failed.
 */
export function attachOnThread(
  source: SourceFd,
  target: WireTarget,
  options: AttachOptions,
  thread: ThreadContext,
): void {
  const { mount } = source;
  const names: PathNames = { source: mount.source, target: targetName(target) };
  // try/finally, not `using`: this is every mountInto's path, and a `using`
  // costs about 0.13 µs.
  const clone = source.type === "plain-open" ? cloneTree(source, names) : undefined;
  try {
    const tree = clone?.fd ?? source.fd;
    const create = options.create ? () => kindOf(tree) : undefined;
    const targetFd = openTarget(target, { create, owner: options.owner, source: mount.source });
    try {
      moveMount(
        tree,
        "",
        targetFd.fd,
        "",
        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        names,
      );
    } catch (error) {
      throw explainAttach(error, tree, targetFd.fd, target, thread);
    } finally {
      targetFd.close();
    }
    try {
      setPropagation(tree, mount, names);
    } catch (error) {
      throw undo(error, tree, thread, names.target!);
    }
  } finally {
    clone?.close();
  }
}

/** A detached clone of a plain source, to attach: `open_tree` of its fd. */
function cloneTree(source: SourceFd, names: PathNames): OwnedFd {
  const recursive = source.mount.flags & MS_REC ? AT_RECURSIVE : 0;
  try {
    return new OwnedFd(
      openTree(source.fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | recursive),
    );
  } catch (error) {
    if (!(error instanceof MountError) || error.code !== "EINVAL") throw error;
    throw error.withHint(
      `(a plain-open source attaches only in the mount namespace it was opened in ` +
        `(${source.namespace ?? "the caller's"}): make it an open_tree source, ` +
        `or attach it there)`,
      names,
    );
  }
}

function kindOf(tree: number): "directory" | "file" {
  return (fileInfo(tree).mode & S_IFMT) === S_IFDIR ? "directory" : "file";
}

/**
 * Applies a mount's propagation to the attached mount, through its fd:
 * the propagation bits of `flags`, then `propagationFlags` in order, then
 * `recAttr.propagation` (recursive).
 */
function setPropagation(tree: number, mount: Mount, names: PathNames): void {
  if (mount.flags & PROPAGATION_FLAGS) {
    propagate(tree, mount.flags & (PROPAGATION_FLAGS | MS_REC), names);
  }
  if (mount.propagationFlags !== undefined) {
    for (const flag of mount.propagationFlags) propagate(tree, flag, names);
  }
  if (mount.recAttr?.propagation) propagate(tree, mount.recAttr.propagation | MS_REC, names);
}

/** One propagation type, recursive with `MS_REC`, through mount_setattr(2). */
function propagate(tree: number, flag: number, names: PathNames): void {
  const type = flag & PROPAGATION_FLAGS;
  mountSetattr(
    tree,
    "",
    flag & MS_REC ? AT_EMPTY_PATH | AT_RECURSIVE : AT_EMPTY_PATH,
    { attrSet: 0, propagation: type },
    { ...names, op: `mount_setattr(${stringifyMountFlags(flag & (type | MS_REC))})` },
  );
}

/**
 * Detaches an attached mount again, through its fd, and returns the error
 * that made it necessary (with a note if detaching failed too).
 */
function undo(error: unknown, tree: number, thread: ThreadContext, target: string): unknown {
  try {
    unmountFd(tree, MNT_DETACH, thread, undefined, target);
  } catch (undoError) {
    if (error instanceof Error) {
      error.message += ` (and detaching it again failed: ${
        undoError instanceof Error ? undoError.message : String(undoError)
      })`;
    }
  }
  return error;
}

const PROC_ROOT = /^\/proc\/(\d+|self|thread-self)\/root(\/|$)/;

/**
 * Explains an EINVAL from move_mount(2): a directory onto a file or the
 * reverse, or, on the main thread, a target of another mount namespace
 * (such as one under `/proc/PID/root`), which the kernel refuses: says why,
 * and what to use instead.
 */
function explainAttach(
  error: unknown,
  tree: number,
  targetFd: number,
  target: WireTarget,
  thread: ThreadContext,
): unknown {
  if (!(error instanceof MountError) || error.code !== "EINVAL") return error;
  const hint = (hint: string) => error.withHint(hint);
  let kinds: string[];
  try {
    kinds = [kindOf(tree), kindOf(targetFd)];
  } catch {
    return error;
  }
  if (kinds[0] !== kinds[1]) {
    return hint(`(the source is a ${kinds[0]} and the target a ${kinds[1]}: they must match)`);
  }
  if (inThisNamespace(targetFd, thread) !== false) return error;
  if (thread.procFd !== undefined) {
    return hint(
      "(the target is a mount of another mount namespace than the one joined, reached " +
        'through a magic link or /proc/PID/root: give it as { root: "/", path })',
    );
  }
  const path = typeof target === "string"
    ? target
    : typeof target.root === "string"
    ? target.root
    : target.root.name ?? "";
  const pid = PROC_ROOT.exec(path)?.[1] ?? "PID";
  return hint(
    `(the target is in another mount namespace, where the kernel attaches nothing ` +
      `from here; join it: openMountNamespace("/proc/${pid}/ns/mnt"), then its mountInto ` +
      `or attach with the target { root: "/", path })`,
  );
}
