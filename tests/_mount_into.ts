/**
 * What the mountInto tests share: a test for each kind of source (plain and
 * id-mapped), the tmpfs sources and mount points they make, their bind
 * mounts, and what mountinfo shows of the result.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mount } from "./_syscalls.ts";
import {
  type Mount,
  type MountAttr,
  type MountIDMapping,
  MS_BIND,
  MS_NOATIME,
  MS_NODEV,
  MS_NOSUID,
  MS_REC,
  MS_SHARED,
} from "../mod.ts";
import { mountAt, type MountInfo } from "./_mountinfo.ts";
import { mountTest } from "./_mounts.ts";
import type { Fixture } from "./_fixture.ts";
import { simpleMapping } from "./_mappings.ts";

/** The two kinds of mount source: a plain bind, and an id-mapped one. */
const KINDS: [string, MountIDMapping | undefined][] = [
  ["plain", undefined],
  ["idmapped", simpleMapping()],
];

/**
 * A test for each kind of source.
 *
 * @param name The test name, to which the kind is added.
 * @param fn The body, given the kind's id mapping (`undefined` for plain).
 */
export function eachKind(
  name: string,
  fn: (fx: Fixture, idMapping: MountIDMapping | undefined) => Promise<void> | void,
): void {
  for (const [kind, idMapping] of KINDS) {
    mountTest(`${name} (${kind})`, (fx) => fn(fx, idMapping));
  }
}

/** How {@linkcode makeSource} makes a source. */
export interface SourceOptions {
  /** Mount flags of the source tmpfs. */
  flags?: number;
  /** Make the source shared. */
  shared?: boolean;
  /** Mount a tmpfs at src/sub too. */
  sub?: boolean;
}

/**
 * A tmpfs at fx/src with known flags: "rw,relatime" by default.
 *
 * @param fx The fixture.
 * @param options Its flags, whether it is shared, and a submount.
 * @returns Its path.
 */
export function makeSource(fx: Fixture, options: SourceOptions = {}): string {
  const src = fx.mkdir("src");
  mount("tmpfs", src, "tmpfs", options.flags ?? 0, "mode=0755,size=1m");
  fx.track(src);
  Deno.writeTextFileSync(`${src}/file`, "x");
  if (options.sub) {
    const sub = fx.mkdir("src/sub");
    mount("tmpfs", sub, "tmpfs", options.flags ?? 0, "mode=0755,size=1m");
    fx.track(sub);
  }
  if (options.shared) mount(null, src, null, MS_SHARED | MS_REC, null);
  return src;
}

/** The flags of a source whose flags a mount keeps or replaces: nosuid,nodev,noatime. */
export const SOURCE_FLAGS: number = MS_NOSUID | MS_NODEV | MS_NOATIME;

/**
 * A new mount point in the fixture, detached on dispose.
 *
 * @param fx The fixture.
 * @param rel Its path in the fixture.
 * @returns Its path.
 */
export function target(fx: Fixture, rel = "t"): string {
  const path = fx.mkdir(rel);
  fx.track(path);
  return path;
}

/**
 * A bind mount of `source`, to `/d`.
 *
 * @param source The path to bind.
 * @param idMapping Its id mapping, if any.
 * @param extra Other fields of the mount, which win.
 * @returns The mount.
 */
export function bindMount(
  source: string,
  idMapping: MountIDMapping | undefined,
  extra: Partial<Mount> = {},
): Mount {
  return { source, destination: "/d", flags: MS_BIND, idMapping, ...extra };
}

/**
 * The mount at `path`; fails if there is none.
 *
 * @param path A mount point.
 * @returns Its line of mountinfo.
 */
export function at(path: string): MountInfo {
  const info = mountAt(path);
  assert.ok(info, `a mount at ${path}`);
  return info;
}

/**
 * The per-mount options but `idmapped`, sorted.
 *
 * @param info A mount.
 * @returns Its options.
 */
export function options(info: MountInfo): string[] {
  return info.options.filter((o) => o !== "idmapped").sort();
}

/**
 * A mount's `recAttr`.
 *
 * @param attrSet The attributes to set.
 * @param attrClr The attributes to clear.
 * @param propagation The propagation, 0 for none.
 * @returns The attributes.
 */
export function recAttr(attrSet: number, attrClr = 0, propagation = 0): MountAttr {
  return { attrSet, attrClr, propagation };
}
