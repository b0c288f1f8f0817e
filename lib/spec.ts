/**
 * OCI runtime-spec mounts: `config.json`'s `mounts` entries, converted to the
 * {@linkcode Mount} model with runc's option table (libcontainer/specconv).
 *
 * @module
 */

import {
  MOUNT_ATTR__ATIME,
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NODIRATIME,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_NOSYMFOLLOW,
  MOUNT_ATTR_RDONLY,
  MOUNT_ATTR_RELATIME,
  MOUNT_ATTR_STRICTATIME,
  MS_BIND,
  MS_DIRSYNC,
  MS_I_VERSION,
  MS_LAZYTIME,
  MS_MANDLOCK,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
} from "../ffi/constants.ts";
import { assertPath } from "../ffi/syscalls.ts";
import { describe } from "./errors.ts";
import type { IDMap, Mount, MountIDMapping } from "./mount.ts";

/**
 * The container's own user namespace, for `idmap`/`ridmap` options that give
 * no mappings of their own: its path when the container joins an existing
 * one, or the mappings of the one it creates (`linux.uidMappings` and
 * `linux.gidMappings`).
 *
 * @example The mappings of a container's new user namespace
 * ```ts
 * import type { SpecContext } from "../mod.ts";
 * const context: SpecContext = {
 *   uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 * };
 * ```
 */
export interface SpecContext {
  /** The container's uid mappings. */
  uidMappings?: IDMap[];
  /** The container's gid mappings. */
  gidMappings?: IDMap[];
  /** The user namespace the container joins; takes precedence over the lists. */
  usernsPath?: string;
  /** The bundle directory, that relative bind sources are resolved against. */
  cwd?: string;
}

/**
 * One entry of `mounts` in an OCI runtime-spec `config.json`.
 *
 * @example A read-only, id-mapped bind mount
 * ```ts
 * import type { SpecMount } from "../mod.ts";
 * const spec: SpecMount = {
 *   destination: "/data",
 *   type: "bind",
 *   source: "/srv/data",
 *   options: ["rbind", "ro", "ridmap"],
 *   uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *   gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 * };
 * ```
 */
export interface SpecMount {
  /** Where the mount goes, inside the container. */
  destination: string;
  /** The filesystem type; `"bind"` marks a bind mount. */
  type?: string;
  /** The path or device mounted. */
  source?: string;
  /** mount(8)-style options, such as `"rbind"`, `"ro"`, `"idmap"`. */
  options?: string[];
  /** Id-map the mount with these uid ranges. */
  uidMappings?: IDMap[];
  /** Id-map the mount with these gid ranges. */
  gidMappings?: IDMap[];
}

/** runc's `EXT_COPYUP` extension: the `tmpcopyup` option. */
export const EXT_COPYUP = 1;

// Options that set (false) or clear (true) MS_* flags.
const FLAGS: Readonly<Record<string, readonly [clear: boolean, flag: number]>> = {
  async: [true, MS_SYNCHRONOUS],
  atime: [true, MS_NOATIME],
  bind: [false, MS_BIND],
  defaults: [false, 0],
  dev: [true, MS_NODEV],
  diratime: [true, MS_NODIRATIME],
  dirsync: [false, MS_DIRSYNC],
  exec: [true, MS_NOEXEC],
  iversion: [false, MS_I_VERSION],
  lazytime: [false, MS_LAZYTIME],
  loud: [true, MS_SILENT],
  mand: [false, MS_MANDLOCK],
  noatime: [false, MS_NOATIME],
  nodev: [false, MS_NODEV],
  nodiratime: [false, MS_NODIRATIME],
  noexec: [false, MS_NOEXEC],
  noiversion: [true, MS_I_VERSION],
  nolazytime: [true, MS_LAZYTIME],
  nomand: [true, MS_MANDLOCK],
  norelatime: [true, MS_RELATIME],
  nostrictatime: [true, MS_STRICTATIME],
  nosuid: [false, MS_NOSUID],
  nosymfollow: [false, MS_NOSYMFOLLOW],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  remount: [false, MS_REMOUNT],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  silent: [false, MS_SILENT],
  strictatime: [false, MS_STRICTATIME],
  suid: [true, MS_NOSUID],
  sync: [false, MS_SYNCHRONOUS],
  symfollow: [true, MS_NOSYMFOLLOW],
};

const PROPAGATION: Readonly<Record<string, number>> = {
  rprivate: MS_PRIVATE | MS_REC,
  private: MS_PRIVATE,
  rslave: MS_SLAVE | MS_REC,
  slave: MS_SLAVE,
  rshared: MS_SHARED | MS_REC,
  shared: MS_SHARED,
  runbindable: MS_UNBINDABLE | MS_REC,
  unbindable: MS_UNBINDABLE,
};

// Options that set (false) or clear (true) MOUNT_ATTR_* bits recursively.
const REC_ATTRS: Readonly<Record<string, readonly [clear: boolean, attr: number]>> = {
  rro: [false, MOUNT_ATTR_RDONLY],
  rrw: [true, MOUNT_ATTR_RDONLY],
  rnosuid: [false, MOUNT_ATTR_NOSUID],
  rsuid: [true, MOUNT_ATTR_NOSUID],
  rnodev: [false, MOUNT_ATTR_NODEV],
  rdev: [true, MOUNT_ATTR_NODEV],
  rnoexec: [false, MOUNT_ATTR_NOEXEC],
  rexec: [true, MOUNT_ATTR_NOEXEC],
  rnodiratime: [false, MOUNT_ATTR_NODIRATIME],
  rdiratime: [true, MOUNT_ATTR_NODIRATIME],
  rrelatime: [false, MOUNT_ATTR_RELATIME],
  rnorelatime: [true, MOUNT_ATTR_RELATIME],
  rnoatime: [false, MOUNT_ATTR_NOATIME],
  ratime: [true, MOUNT_ATTR_NOATIME],
  rstrictatime: [false, MOUNT_ATTR_STRICTATIME],
  rnostrictatime: [true, MOUNT_ATTR_STRICTATIME],
  rnosymfollow: [false, MOUNT_ATTR_NOSYMFOLLOW],
  rsymfollow: [true, MOUNT_ATTR_NOSYMFOLLOW],
};

const EXTENSIONS: Readonly<Record<string, number>> = { tmpcopyup: EXT_COPYUP };

/** Every option {@linkcode mountFromSpec} knows; others go to `data`. */
export const KNOWN_MOUNT_OPTIONS: readonly string[] = [
  ...Object.keys(FLAGS),
  ...Object.keys(PROPAGATION),
  ...Object.keys(REC_ATTRS),
  ...Object.keys(EXTENSIONS),
  "idmap",
  "ridmap",
].sort();

function checkIDMapList(value: unknown, field: string): IDMap[] {
  if (!Array.isArray(value)) {
    throw new TypeError(
      `Invalid ${field}: expected an array of { containerID, hostID, size }, got ${
        describe(value)
      }`,
    );
  }
  return value.map((entry, i) => {
    if (typeof entry !== "object" || entry === null) {
      throw new TypeError(
        `Invalid ${field}[${i}]: expected { containerID, hostID, size }, got ${describe(entry)}`,
      );
    }
    const { containerID, hostID, size } = entry as IDMap;
    return { containerID, hostID, size };
  });
}

/**
 * Converts one OCI runtime-spec mount into a {@linkcode Mount}, as runc's
 * specconv does:
 *
 * - flag options set or clear `MS_*` bits (`ro`/`rw`, `nosuid`/`suid` ...);
 *   cleared ones are recorded in `clearedFlags`;
 * - propagation options (`private`, `rshared` ...) go to `propagationFlags`;
 * - recursive options (`rro`, `rnosuid` ...) go to `recAttr`; an access-time
 *   one also clears `MOUNT_ATTR__ATIME`, as mount_setattr(2) requires;
 * - `tmpcopyup` goes to `extensions`;
 * - `idmap` and `ridmap` (recursive) id-map the mount, with the mount's own
 *   `uidMappings`/`gidMappings`, else the container's from `context`
 *   (`usernsPath` first); mappings on the mount id-map it even without them;
 * - `type: "bind"`, `bind` and `rbind` make a bind mount;
 * - unknown options go to `data`, comma-joined.
 *
 * It converts; {@linkcode validateMount} checks the result.
 *
 * @param spec The spec mount.
 * @param context The container's user namespace, and the bundle directory.
 * @returns The mount.
 * @throws {TypeError} If a field has the wrong type or a string holds a NUL
 * byte.
 *
 * @example Convert a config.json mount
 * ```ts
 * import { mountFromSpec } from "../mod.ts";
 *
 * const mount = mountFromSpec(
 *   { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro", "idmap"] },
 *   { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
 *     gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] },
 * );
 * console.log(mount.flags, mount.idMapping?.uidMappings);
 * ```
 */
export function mountFromSpec(spec: SpecMount, context: SpecContext = {}): Mount {
  if (typeof spec !== "object" || spec === null) {
    throw new TypeError(`Invalid spec mount: expected an object, got ${describe(spec)}`);
  }
  assertPath(spec.destination, "spec.destination");
  if (spec.source !== undefined) assertPath(spec.source, "spec.source");
  if (spec.type !== undefined) assertPath(spec.type, "spec.type");
  const options = spec.options ?? [];
  if (!Array.isArray(options)) {
    throw new TypeError(`Invalid spec.options: expected an array, got ${describe(options)}`);
  }

  let flags = 0;
  let clearedFlags = 0;
  const propagationFlags: number[] = [];
  let attrSet = 0;
  let attrClr = 0;
  let extensions = 0;
  let idMapping: MountIDMapping | undefined;
  const data: string[] = [];
  options.forEach((option, i) => {
    assertPath(option, `spec.options[${i}]`);
    const flag = FLAGS[option];
    const attr = REC_ATTRS[option];
    if (flag !== undefined && flag[1] !== 0) {
      const [clear, bits] = flag;
      if (clear) {
        flags &= ~bits;
        clearedFlags |= bits;
      } else {
        flags |= bits;
        clearedFlags &= ~bits;
      }
    } else if (PROPAGATION[option] !== undefined) {
      propagationFlags.push(PROPAGATION[option]);
    } else if (attr !== undefined) {
      const [clear, bits] = attr;
      if (clear) {
        attrClr |= bits;
        attrSet &= ~bits;
      } else {
        attrSet |= bits;
        attrClr &= ~bits;
      }
      // mount_setattr(2): an access-time setting needs MOUNT_ATTR__ATIME cleared.
      if ((bits & MOUNT_ATTR__ATIME) === bits) attrClr |= MOUNT_ATTR__ATIME;
    } else if (EXTENSIONS[option] !== undefined) {
      extensions |= EXTENSIONS[option];
    } else if (option === "idmap" || option === "ridmap") {
      idMapping = { recursive: option === "ridmap" };
    } else if (flag === undefined) {
      data.push(option);
    }
  });

  const bind = (flags & MS_BIND) !== 0 || spec.type === "bind";
  if (bind) flags |= MS_BIND;
  let source = spec.source ?? "";
  if (bind && context.cwd !== undefined && !source.startsWith("/")) {
    assertPath(context.cwd, "context.cwd");
    source = `${context.cwd.replace(/\/+$/, "")}/${source}`;
  }

  if (spec.uidMappings !== undefined || spec.gidMappings !== undefined) {
    idMapping ??= {};
    if (spec.uidMappings !== undefined) {
      idMapping.uidMappings = checkIDMapList(spec.uidMappings, "spec.uidMappings");
    }
    if (spec.gidMappings !== undefined) {
      idMapping.gidMappings = checkIDMapList(spec.gidMappings, "spec.gidMappings");
    }
  } else if (idMapping !== undefined) {
    if (context.usernsPath !== undefined) {
      assertPath(context.usernsPath, "context.usernsPath");
      idMapping.usernsPath = context.usernsPath;
    } else {
      if (context.uidMappings !== undefined) {
        idMapping.uidMappings = checkIDMapList(context.uidMappings, "context.uidMappings");
      }
      if (context.gidMappings !== undefined) {
        idMapping.gidMappings = checkIDMapList(context.gidMappings, "context.gidMappings");
      }
    }
  }

  const mount: Mount = {
    source,
    destination: spec.destination,
    device: bind ? "bind" : spec.type ?? "",
    flags,
  };
  if (clearedFlags !== 0) mount.clearedFlags = clearedFlags;
  if (propagationFlags.length > 0) mount.propagationFlags = propagationFlags;
  if (data.length > 0) mount.data = data.join(",");
  if (attrSet !== 0 || attrClr !== 0) mount.recAttr = { attrSet, attrClr, propagation: 0 };
  if (extensions !== 0) mount.extensions = extensions;
  if (idMapping !== undefined) mount.idMapping = idMapping;
  return mount;
}
