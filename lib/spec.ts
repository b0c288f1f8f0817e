/**
 * OCI runtime-spec mounts: `config.json`'s `mounts` entries, converted to the
 * {@linkcode Mount} model with runc's option table (libcontainer/specconv).
 *
 * @module
 */

import { MOUNT_ATTR__ATIME, MS_BIND } from "../ffi/constants.ts";
import { assertPath } from "./check.ts";
import { copyIDMaps } from "./id_ranges.ts";
import { describe } from "./errors.ts";
import { MOUNT_OPTIONS } from "./flags.ts";
import type { IDMap, Mount, MountIDMapping } from "./mount.ts";

/**
 * The container's own user namespace, for `idmap`/`ridmap` options that give
 * no mappings of their own: its path when the container joins an existing
 * one, or the mappings of the one it creates (`linux.uidMappings` and
 * `linux.gidMappings`).
 *
 * @example The mappings of a container's new user namespace
 * ```ts
 * import type { SpecContext } from "@mountfd/mountfd";
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
 * import type { SpecMount } from "@mountfd/mountfd";
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
 *   crun's `idmap=uids=0-1-10#10-11-10;gids=0-100-10` gives mappings of its
 *   own (with `@`, relative to the container's);
 * - `type: "bind"`, `bind` and `rbind` make a bind mount; a relative bind
 *   source is joined to `context.cwd` and cleaned, as runc's `filepath.Join`;
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
 * import { mountFromSpec } from "@mountfd/mountfd";
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

  const parsed = parseOptions(options, context);
  let { flags, idMapping } = parsed;
  const bind = (flags & MS_BIND) !== 0 || spec.type === "bind";
  if (bind) flags |= MS_BIND;
  let source = spec.source ?? "";
  if (bind && context.cwd !== undefined && !source.startsWith("/")) {
    assertPath(context.cwd, "context.cwd");
    source = cleanPath(`${context.cwd}/${source}`);
  }

  if (spec.uidMappings !== undefined || spec.gidMappings !== undefined) {
    idMapping ??= {};
    if (spec.uidMappings !== undefined) {
      idMapping.uidMappings = copyIDMaps(spec.uidMappings, "spec.uidMappings");
    }
    if (spec.gidMappings !== undefined) {
      idMapping.gidMappings = copyIDMaps(spec.gidMappings, "spec.gidMappings");
    }
  } else if (idMapping !== undefined) {
    idMapping = copyMapping(resolveIDMapping(idMapping, context));
  }

  const mount: Mount = {
    source,
    destination: spec.destination,
    device: bind ? "bind" : spec.type ?? "",
    flags,
  };
  const { clearedFlags, propagationFlags, attrSet, attrClr, extensions, data } = parsed;
  if (clearedFlags !== 0) mount.clearedFlags = clearedFlags;
  if (propagationFlags.length > 0) mount.propagationFlags = propagationFlags;
  if (data.length > 0) mount.data = data.join(",");
  if (attrSet !== 0 || attrClr !== 0) mount.recAttr = { attrSet, attrClr, propagation: 0 };
  if (extensions !== 0) mount.extensions = extensions;
  if (idMapping !== undefined) mount.idMapping = idMapping;
  return mount;
}

/** What a spec mount's options say, in the fields of a {@linkcode Mount}. */
interface ParsedOptions {
  flags: number;
  clearedFlags: number;
  propagationFlags: number[];
  attrSet: number;
  attrClr: number;
  extensions: number;
  idMapping: MountIDMapping | undefined;
  /** Unknown options, for `data`. */
  data: string[];
}

/**
 * Applies a spec mount's options in order, as runc's `parseMountOptions`:
 * a later option overrides an earlier one that sets the same bits.
 */
function parseOptions(options: unknown[], context: SpecContext): ParsedOptions {
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
    const known = Object.hasOwn(MOUNT_OPTIONS, option) ? MOUNT_OPTIONS[option] : undefined;
    switch (known?.kind) {
      case undefined: {
        // crun's form with mappings of its own: idmap=uids=0-1-10#10-11-10;gids=...
        const custom = /^(r?idmap)=(.*)$/.exec(option);
        if (custom === null) {
          data.push(option);
          break;
        }
        idMapping = {
          recursive: custom[1] === "ridmap",
          ...parseCrunMappings(custom[2], `spec.options[${i}]`, context),
        };
        break;
      }
      case "flag":
        if (known.clear) {
          flags &= ~known.bits;
          clearedFlags |= known.bits;
        } else {
          flags |= known.bits;
          clearedFlags &= ~known.bits;
        }
        break;
      case "propagation":
        propagationFlags.push(known.flag);
        break;
      case "recAttr":
        if (known.clear) {
          attrClr |= known.bits;
          attrSet &= ~known.bits;
        } else {
          attrSet |= known.bits;
          attrClr &= ~known.bits;
        }
        // mount_setattr(2): an access-time setting needs MOUNT_ATTR__ATIME cleared.
        if ((known.bits & MOUNT_ATTR__ATIME) === known.bits) attrClr |= MOUNT_ATTR__ATIME;
        break;
      case "extension":
        extensions |= known.bits;
        break;
      case "idmap":
        idMapping = { recursive: known.recursive };
        break;
    }
  });

  return {
    flags,
    clearedFlags,
    propagationFlags,
    attrSet,
    attrClr,
    extensions,
    idMapping,
    data,
  };
}

/** A resolved id mapping from a context, its lists copied and its path checked. */
function copyMapping(idMapping: MountIDMapping): MountIDMapping {
  const copy: MountIDMapping = { recursive: idMapping.recursive };
  if (idMapping.usernsPath !== undefined) {
    assertPath(idMapping.usernsPath, "context.usernsPath");
    copy.usernsPath = idMapping.usernsPath;
  }
  if (idMapping.uidMappings !== undefined) {
    copy.uidMappings = copyIDMaps(idMapping.uidMappings, "context.uidMappings");
  }
  if (idMapping.gidMappings !== undefined) {
    copy.gidMappings = copyIDMaps(idMapping.gidMappings, "context.gidMappings");
  }
  return copy;
}

/**
 * A path cleaned as Go's `filepath.Clean` does, as runc joins a relative
 * bind source to the bundle: no empty or `.` components, `..` resolved
 * lexically (never above `/`).
 */
function cleanPath(path: string): string {
  const absolute = path.startsWith("/");
  const names: string[] = [];
  for (const name of path.split("/")) {
    if (name === "" || name === ".") continue;
    if (name === ".." && names.length > 0 && names[names.length - 1] !== "..") names.pop();
    else if (name !== ".." || !absolute) names.push(name);
  }
  const joined = names.join("/");
  return absolute ? `/${joined}` : joined || ".";
}

const CRUN_RANGE = /^(@?)(\d+)-(\d+)-(\d+)$/;

/**
 * Parses crun's mappings of an `idmap=` option (crun(1), "idmap mount
 * options"): `uids=0-1-10#10-11-10;gids=0-100-10`, each range
 * `containerID-hostID-size`; with a leading `@`, the host id is relative to
 * the container's user namespace, as crun reads it: the container id is
 * moved by the offset (`hostID - containerID`) of the container's range that
 * holds it.
 */
function parseCrunMappings(
  text: string,
  field: string,
  context: SpecContext,
): { uidMappings?: IDMap[]; gidMappings?: IDMap[] } {
  const result: { uidMappings?: IDMap[]; gidMappings?: IDMap[] } = {};
  for (const part of text.split(";")) {
    const match = /^(uids|gids)=(.+)$/.exec(part);
    if (match === null) {
      throw new TypeError(
        `Invalid ${field}: expected uids=...;gids=... after idmap=, got ${JSON.stringify(part)}`,
      );
    }
    const [, kind, list] = match;
    const own = kind === "uids" ? context.uidMappings : context.gidMappings;
    const key = kind === "uids" ? "uidMappings" : "gidMappings";
    result[key] = list.split("#").map((range) => {
      const parts = CRUN_RANGE.exec(range);
      if (parts === null) {
        throw new TypeError(
          `Invalid ${field}: expected ${kind} ranges as [@]containerID-hostID-size, ` +
            `got ${JSON.stringify(range)}`,
        );
      }
      const [containerID, hostID, size] = parts.slice(2).map(Number);
      if (parts[1] === "") return { containerID, hostID, size };
      const holder = own?.find((m) => hostID >= m.containerID && hostID < m.containerID + m.size);
      if (holder === undefined) {
        throw new TypeError(
          `Invalid ${field}: ${range} is relative to the container's ${kind}, but its ` +
            `mappings ${own ? "hold no id " + hostID : "are not given"}`,
        );
      }
      return { containerID, hostID: hostID + holder.hostID - holder.containerID, size };
    });
  }
  return result;
}

/**
 * The id mapping a mount gets: its own, or, when it names neither a user
 * namespace nor mappings ("idmap" alone), the container's from `context`:
 * its user namespace path first, else its mappings.
 *
 * @param idMapping The mount's id mapping.
 * @param context The container's user namespace.
 * @returns The id mapping to use; `idMapping` itself if it is complete.
 */
export function resolveIDMapping(
  idMapping: MountIDMapping,
  context: SpecContext,
): MountIDMapping {
  const { usernsPath, uidMappings, gidMappings } = idMapping;
  if (usernsPath !== undefined || uidMappings !== undefined || gidMappings !== undefined) {
    return idMapping;
  }
  const resolved: MountIDMapping = {};
  if (idMapping.recursive !== undefined) resolved.recursive = idMapping.recursive;
  if (context.usernsPath !== undefined) {
    resolved.usernsPath = context.usernsPath;
    return resolved;
  }
  if (context.uidMappings !== undefined) resolved.uidMappings = context.uidMappings;
  if (context.gidMappings !== undefined) resolved.gidMappings = context.gidMappings;
  return resolved;
}
