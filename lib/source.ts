/**
 * Mount sources: a port of runc's `mountFd`. A source carries its whole
 * mount: a bare bind is an `O_PATH` fd, anything more a detached mount with
 * its id mapping, flags and recursive attributes already set.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_NOSYMFOLLOW,
  MS_REC,
  O_PATH,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
} from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { libc } from "../ffi/libc.ts";
import { PermissionError } from "../ffi/permission_error.ts";
import { open } from "../ffi/syscalls.ts";
import { fstatfsFlags, mountSetattr, openTree } from "../ffi/mount_api.ts";
import type { PathNames } from "../ffi/call.ts";
import { checkMount, wantsFlags } from "./check.ts";
import { OwnedFd } from "./fd.ts";
import { explainSourceError } from "./hints.ts";
import {
  ATIME_FLAGS,
  type AttrChange,
  flagsToAttr,
  LOCK_FLAGS,
  recAttrChange,
  statfsToMountFlags,
  stringifyMountFlags,
} from "./flags.ts";
import type { Mapping, Mount, MountIDMapping, MountSourceType } from "./mount.ts";
import { openNamespaceFile } from "./namespace_file.ts";
import { UNSHARE } from "./userns/programs.ts";
import { Handles, peekUserns } from "./userns/handles.ts";

/**
 * A mount source: an fd from {@linkcode mountFd}, ready to attach with
 * {@linkcode attachMountSource}. It owns its fd, as an {@linkcode OwnedFd}.
 *
 * @example Make and close a mount source
 * ```ts
 * import { mountFd, MS_BIND } from "@mountfd/mountfd";
 *
 * using source = await mountFd({ source: "/", destination: "/mnt", flags: MS_BIND });
 * console.log(source.type, source.fd); // "plain-open" 42
 * ```
 */
export class MountSource extends OwnedFd {
  /** `"plain-open"` for a bare bind, `"open_tree"` for anything more. */
  readonly type: MountSourceType;
  /** The mount it was made from. */
  readonly mount: Mount;
  /**
   * The mount namespace the fd was opened in, as `mnt:[N]`, when it is not
   * the caller's: a `"plain-open"` source attaches only there.
   */
  readonly namespace: string | undefined;

  /**
   * Wraps an fd that this object now owns.
   *
   * @param type The kind of fd.
   * @param fd The fd.
   * @param mount The mount it was made from.
   * @param namespace The mount namespace it was opened in, if not the caller's.
   */
  constructor(type: MountSourceType, fd: number, mount: Mount, namespace?: string) {
    super(fd);
    this.type = type;
    this.mount = mount;
    this.namespace = namespace;
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
 * import { Handles, type MountFdOptions } from "@mountfd/mountfd";
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

/**
 * Makes a mount source from a bind mount, as runc's `mountFd` does, with the
 * whole mount in it:
 *
 * - A bare bind (`MS_BIND`, maybe `MS_REC`, nothing else) gives
 *   `open(source, O_PATH|O_CLOEXEC)`: type `"plain-open"`.
 * - Anything more gives a detached mount, `open_tree(OPEN_TREE_CLONE)`,
 *   recursive with `MS_REC`: type `"open_tree"`. Before it is ever attached,
 *   mount_setattr(2) gives it its id mapping (`MOUNT_ATTR_IDMAP`, recursive
 *   with `idMapping.recursive`), its flags (`MS_RDONLY`, `MS_NOSUID`,
 *   `MS_NODEV`, `MS_NOEXEC`, the atime flags, `MS_NOSYMFOLLOW`, set as
 *   `mount --bind -o` would, the others cleared) and its `recAttr`. Flags
 *   locked by a less privileged mount namespace are kept, as runc does.
 *
 * Propagation (`propagationFlags`, `recAttr.propagation`) is applied when
 * the source is attached. The user namespace of an id mapping comes from
 * `idMapping.usernsPath`, or from `options.handles`, or from a temporary
 * {@linkcode Handles}. Source paths resolve in the caller's mount namespace.
 * Every fd the call opens is close-on-exec, and is closed if it fails.
 *
 * @param mount A bind mount.
 * @param options The user namespace cache, and an abort signal.
 * @returns The mount source, which the caller closes.
 * @throws {TypeError} For a malformed mount, before any syscall.
 * @throws {MountError} For a non-bind mount (`only bind-mounts are
 * supported`), a flag a bind mount can't carry, or a failed syscall or
 * helper; an EINVAL from the id mapping carries the hint that the
 * filesystem may not support id-mapped mounts.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi` (or
 * `--allow-run=unshare` for an id mapping given as lists), naming the flag.
 * @throws The signal's reason, once aborted.
 *
 * @example Make an id-mapped, read-only mount source and attach it
 * ```ts
 * import { attachMountSource, mountFd, MS_BIND, MS_RDONLY } from "@mountfd/mountfd";
 *
 * using source = await mountFd({
 *   source: "/srv/data",
 *   destination: "/data",
 *   flags: MS_BIND | MS_RDONLY,
 *   idMapping: {
 *     uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *     gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   },
 * });
 * attachMountSource(source, "/mnt/data");
 * ```
 */
export function mountFd(
  mount: Mount,
  options?: MountFdOptions,
): Promise<MountSource> {
  try {
    const type = checkMount(mount);
    options?.signal?.throwIfAborted();
    const source = makeSource(mount, type, options ?? NO_OPTIONS);
    // A plain source is settled at once, with no further promise hop (the hot path).
    if (source instanceof MountSource) return Promise.resolve(source);
    return source.catch((error) => Promise.reject(explainMountFd(error, mount)));
  } catch (error) {
    return Promise.reject(explainMountFd(error, mount));
  }
}

const NO_OPTIONS: MountFdOptions = Object.freeze({});

/** A failed mountFd's error, with its hint and the flag a refused permission needs. */
function explainMountFd(error: unknown, mount: Mount): unknown {
  return PermissionError.in(explainSourceError(error, mount), "mountFd");
}

/**
 * The source of a mount checked by `checkMount`, made in the caller's mount
 * namespace: no check is made again.
 *
 * @param mount A checked bind mount.
 * @param type The kind of source to make: what `checkMount` said, or
 * `"open_tree"` for a source that attaches in another mount namespace.
 * @param options The user namespace cache, and an abort signal.
 * @returns The source; a plain one at once, not as a promise.
 */
export function makeSource(
  mount: Mount,
  type: MountSourceType,
  options: MountFdOptions,
): MountSource | Promise<MountSource> {
  if (type === "plain-open") return new MountSource(type, openSourceOnThread(mount, type), mount);
  const idMapping = mount.idMapping;
  const cached = cachedUserns(mount, options);
  if (idMapping != null && idMapping.usernsPath === undefined && cached === undefined) {
    // A missing --allow-run is said first, before any syscall on the source.
    libc("open_tree"); // --allow-ffi first, named for the call that needs it
    UNSHARE.checkPermission();
  }
  return finishSource(
    new MountSource(type, openSourceOnThread(mount, type), mount),
    options,
    cached,
  );
}

/**
 * The cached user namespace of a mount's id mapping given as lists, itself
 * (no dup): to use at once, in the same turn, and not close.
 *
 * @param mount A checked mount.
 * @param options The user namespace cache.
 * @returns The cached fd, or `undefined` if there is none to use.
 */
function cachedUserns(mount: Mount, options: MountFdOptions): OwnedFd | undefined {
  const idMapping = mount.idMapping;
  if (idMapping == null || idMapping.usernsPath !== undefined || options.handles === undefined) {
    return undefined;
  }
  return peekUserns(options.handles, idMapping as Mapping);
}

/**
 * Opens the fd of a mount source on the calling thread, synchronously, in
 * its mount namespace (a Worker joined to another one runs it too):
 * `open(O_PATH)`, or a detached clone (`open_tree`, recursive with
 * `MS_REC`) that {@linkcode finishSource} completes.
 *
 * @param mount A checked bind mount.
 * @param type The kind of source.
 * @returns The fd, which the caller owns.
 * @throws {MountError} With op `"open"` or `"open_tree(OPEN_TREE_CLONE)"`.
 */
export function openSourceOnThread(mount: Mount, type: MountSourceType): number {
  if (type === "plain-open") return open(mount.source, O_PATH);
  const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (mount.flags & MS_REC ? AT_RECURSIVE : 0);
  return openTree(AT_FDCWD, mount.source, flags);
}

/**
 * Completes an `"open_tree"` source: its id mapping, flags and `recAttr`,
 * set on the detached mount. The source is closed if this fails.
 *
 * @param source A source from {@linkcode openSourceOnThread}.
 * @param options The user namespace cache, and an abort signal.
 * @param cached The cached user namespace of its mapping, if the caller
 * looked it up already in this turn.
 * @returns `source`.
 */
export async function finishSource(
  source: MountSource,
  options: MountFdOptions,
  cached: OwnedFd | undefined = cachedUserns(source.mount, options),
): Promise<MountSource> {
  if (source.type === "plain-open") return source;
  const { mount } = source;
  const names = { source: mount.source, target: mount.destination };
  try {
    options.signal?.throwIfAborted();
    const idMapping = mount.idMapping;
    if (idMapping != null) {
      // A cached namespace is used as it is, at once: no dup, no await.
      if (cached !== undefined) {
        setIDMap(source.fd, cached, idMapping.recursive === true, mount.source);
      } else {
        using userns = await openUserns(idMapping, options);
        options.signal?.throwIfAborted();
        setIDMap(source.fd, userns, idMapping.recursive === true, mount.source);
      }
    }
    if (wantsFlags(mount)) setFlags(source.fd, mount, names);
    const attr = mount.recAttr;
    if (attr !== undefined && (attr.attrSet !== 0 || attr.attrClr !== 0)) {
      mountSetattr(source.fd, "", AT_EMPTY_PATH | AT_RECURSIVE, recAttrChange(attr), {
        ...names,
        op: "mount_setattr(AT_RECURSIVE)",
      });
    }
    return source;
  } catch (error) {
    source.close();
    throw error;
  }
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

/** Id-maps a detached tree; `explainSourceError` gives its errors their hints. */
function setIDMap(tree: number, userns: OwnedFd, recursive: boolean, source: string): void {
  mountSetattr(
    tree,
    "",
    recursive ? AT_EMPTY_PATH | AT_RECURSIVE : AT_EMPTY_PATH,
    { attrSet: MOUNT_ATTR_IDMAP, usernsFd: userns.fd },
    { source },
  );
}

/**
 * Sets a mount's flags on its detached tree, as a bind remount would. If the
 * kernel refuses with EPERM because the source has flags locked by a less
 * privileged mount namespace, keeps those and tries again, as runc does,
 * unless `clearedFlags` asks to clear one, or another atime setting is asked.
 */
function setFlags(tree: number, mount: Mount, names: PathNames): void {
  const apply = (flags: number) => setAttr(tree, flagsToAttr(flags), names);
  try {
    apply(mount.flags);
    return;
  } catch (error) {
    if (!(error instanceof MountError) || error.code !== "EPERM") throw error;
    const source = statfsToMountFlags(fstatfsFlags(tree, names));
    const refuse = (hint: string) => error.withHint(hint);
    const cannotClear = source & (mount.clearedFlags ?? 0) & LOCK_FLAGS;
    if (cannotClear !== 0) {
      throw refuse(`(cannot clear locked flags ${stringifyMountFlags(cannotClear)})`);
    }
    const atime = mount.flags & ATIME_FLAGS;
    if (atime !== 0 && atime !== (source & ATIME_FLAGS)) {
      throw refuse(
        `(cannot change locked atime flags ${stringifyMountFlags(source & ATIME_FLAGS)})`,
      );
    }
    const locked = source & LOCK_FLAGS;
    try {
      apply(mount.flags | locked);
    } catch (retry) {
      if (!(retry instanceof MountError)) throw retry;
      throw retry.withHint(`(with the locked flags ${stringifyMountFlags(locked)} re-applied)`);
    }
  }
}

/**
 * mount_setattr(2) of a flag change on a detached tree. Linux 5.12 and 5.13
 * don't know `MOUNT_ATTR_NOSYMFOLLOW` (5.14): clearing it, which nobody
 * asked for explicitly, is left out there.
 */
function setAttr(tree: number, change: AttrChange, names: PathNames): void {
  const op = "mount_setattr";
  try {
    mountSetattr(tree, "", AT_EMPTY_PATH, change, { ...names, op });
  } catch (error) {
    const clearsNosymfollow = (change.attrClr & MOUNT_ATTR_NOSYMFOLLOW) !== 0;
    if (!(error instanceof MountError) || error.code !== "EINVAL" || !clearsNosymfollow) {
      throw error;
    }
    mountSetattr(tree, "", AT_EMPTY_PATH, {
      attrSet: change.attrSet,
      attrClr: change.attrClr & ~MOUNT_ATTR_NOSYMFOLLOW,
    }, { ...names, op });
  }
}
