/**
 * container-mounts: mount the bind mounts of an OCI `config.json` into a
 * running container, the process PID: id maps, flags, propagation and
 * recursive attributes, each destination kept inside the container's root.
 * It never weakens the container (see `--help`).
 *
 *     deno run --allow-ffi --allow-run=unshare --allow-read \
 *       examples/container_mounts.ts [--rootfs] [--replace] [--dry-run] config.json PID
 *
 * One line per mount of the config. Exit status: 0 when no mount failed, 1
 * when one did, 2 for bad usage.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type IDMap,
  isBind,
  type Mount,
  MountError,
  mountFromSpec,
  openMountNamespace,
  type SpecContext,
  type SpecMount,
  stringifyMountFlags,
  validateMount,
} from "../mod.ts";

const USAGE = `Usage: container-mounts [--rootfs] [--replace] [--dry-run] <config.json> <pid>

Mount every bind mount of an OCI runtime-spec config.json into the running
container <pid>, with its id mapping, flags, propagation and recursive
attributes. One line per mount of the config, naming where it landed.

Sources are host paths (relative ones from the directory of config.json);
destinations are paths inside the container's root, which no symbolic link
can leave, created if missing. "idmap" and "ridmap" without mappings use the
config's linux.uidMappings and gidMappings, or its user namespace's path, or
else the user namespace of <pid>. Other mounts (proc, tmpfs ...) are skipped.

It never weakens the container: it skips a destination (resolved inside the
container's root) that is a mount point in /proc/<pid>/mountinfo or has
mounts under it, and always one at, under or above a path of
linux.maskedPaths or linux.readonlyPaths. A runtime's own config.json
changes nothing: each of its mounts is there already.

Options:
  --rootfs    Before pivot_root (a createRuntime hook): sources are paths
              of <pid>'s mount namespace, destinations go under the
              config's root.path, and what is created for them belongs to
              the container's root (the host ids of its uid and gid 0).
  --replace   Stack on mount points on purpose, hiding them and those
              under them. Masked and read-only paths stay refused.
  --dry-run   Print what would be mounted, and mount nothing.
  -h, --help  Show this help.

Exit status: 0 all mounted or skipped, 1 a mount failed, 2 bad usage.`;

/** Bad usage: printed as one line, exit status 2. */
class UsageError extends Error {}

/** The parts of config.json this tool reads. */
interface Config {
  root?: { path?: string };
  mounts?: SpecMount[];
  linux?: {
    uidMappings?: IDMap[];
    gidMappings?: IDMap[];
    namespaces?: { type: string; path?: string }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
  };
}

/** What the command line asks for: config.json, the process, and the options. */
export interface Request {
  config: string;
  pid: number;
  rootfs: boolean;
  replace: boolean;
  dryRun: boolean;
}

/**
 * Turns the command line into a request.
 *
 * @param args The arguments, without the program name.
 * @returns The request, or `"help"`.
 */
export function parseCommandLine(args: string[]): Request | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        rootfs: { type: "boolean" },
        replace: { type: "boolean" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const option = (error as Error).message.match(/Unknown option '([^']+)'/)?.[1];
    throw new UsageError(
      option ? `unknown option ${option} (see --help)` : (error as Error).message,
    );
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  if (positionals.length !== 2) {
    throw new UsageError(`expected <config.json> and <pid>, got ${positionals.length} argument(s)`);
  }
  const [config, pidText] = positionals;
  const pid = Number(pidText);
  if (!/^\d+$/.test(pidText) || pid < 1) {
    throw new UsageError(`invalid pid: ${JSON.stringify(pidText)}`);
  }
  return {
    config,
    pid,
    rootfs: values.rootfs === true,
    replace: values.replace === true,
    dryRun: values["dry-run"] === true,
  };
}

/**
 * The container's user namespace, as `mountFromSpec` takes it: the
 * config's, or else, for a running container, that of its process.
 *
 * @param config The config.
 * @param bundle The directory of config.json.
 * @param pid The container's process, if it runs.
 * @returns The context.
 */
export function specContext(config: Config, bundle: string, pid?: number): SpecContext {
  const linux = config.linux ?? {};
  const context: SpecContext = { cwd: bundle };
  const userns = linux.namespaces?.find((ns) => ns.type === "user")?.path;
  if (userns) context.usernsPath = userns;
  if (linux.uidMappings) context.uidMappings = linux.uidMappings;
  if (linux.gidMappings) context.gidMappings = linux.gidMappings;
  if (!userns && !linux.uidMappings && !linux.gidMappings && pid !== undefined) {
    // `crun spec --rootless` writes none: the process's namespace holds them.
    context.usernsPath = `/proc/${pid}/ns/user`;
  }
  return context;
}

// Deno 2 gives /proc to its file APIs only with --allow-all: the tool reads
// it through libc, as the module does, with the --allow-ffi it has.
const LIBC = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
} as const;
let libc: Deno.DynamicLibrary<typeof LIBC>["symbols"] | undefined;
const cString = (path: string): Uint8Array => new TextEncoder().encode(`${path}\0`);

/** The target of a symbolic link; `undefined` for anything else, or nothing. */
function readLink(path: string): string | undefined {
  libc ??= Deno.dlopen("libc.so.6", LIBC).symbols;
  const buffer = new Uint8Array(4096);
  const n = Number(libc.readlink(cString(path), buffer, 4096n));
  return n < 0 ? undefined : new TextDecoder().decode(buffer.subarray(0, n));
}

/** The text of a file of /proc. */
function readProc(path: string): string {
  libc ??= Deno.dlopen("libc.so.6", LIBC).symbols;
  const fd = libc.open(cString(path), 0o2000000); // O_RDONLY | O_CLOEXEC
  if (fd < 0) throw new Deno.errors.NotFound(`Cannot open ${path}: no such process`);
  const [decoder, buffer] = [new TextDecoder(), new Uint8Array(65536)];
  let text = "";
  try {
    for (let n; (n = Number(libc.read(fd, buffer, 65536n))) > 0;) {
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
  } finally {
    libc.close(fd);
  }
  return text + decoder.decode();
}

/** A mount of a process: its id, its parent's, and its mount point, from the process's root. */
export interface MountPoint {
  id: number;
  parent: number;
  path: string;
}

/**
 * The mounts of a process, from its /proc/PID/mountinfo.
 *
 * @param pid The process.
 * @returns Its mounts, in mount order.
 */
export function readMountPoints(pid: number): MountPoint[] {
  return readProc(`/proc/${pid}/mountinfo`).trim().split("\n").map((line) => {
    const [id, parent, , , path] = line.split(" ");
    const unescaped = path.replace(/\\([0-7]{3})/g, (_, n) => String.fromCharCode(parseInt(n, 8)));
    return { id: Number(id), parent: Number(parent), path: unescaped };
  });
}

/**
 * Where a path leads inside a root, as an `InRoot` target resolves it:
 * symbolic links are followed with the root as "/", and ".." stops at the
 * root; a missing part is kept as it is. This decides what the tool refuses;
 * the module places the mount, resolving the path again, safely.
 *
 * @param root The root as a path of this process, e.g. `/proc/PID/root`;
 *   without one, the path is only cleaned.
 * @param path The path inside it.
 * @returns The path it leads to, absolute, from the root.
 */
export function resolveInRoot(root: string | undefined, path: string): string {
  const done: string[] = [];
  const todo = components(path);
  let links = 0;
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (name === "..") {
      done.pop();
      continue;
    }
    // Missing, or no directory on the way: kept, and the module says which.
    const link = root === undefined ? undefined : readLink(`${root}/${[...done, name].join("/")}`);
    if (link === undefined) {
      done.push(name);
      continue;
    }
    // Past the kernel's MAXSYMLINKS, the mount fails with ELOOP: say that then.
    if (++links > 40) return `/${[...done, name].join("/")}`;
    if (link.startsWith("/")) done.length = 0;
    todo.push(...components(link));
  }
  return `/${done.join("/")}`;
}

/** The components of a path to resolve, last first; "." and empty ones dropped. */
function components(path: string): string[] {
  return path.split("/").filter((name) => name !== "" && name !== ".").reverse();
}

/** Whether `path` is `dir` or under it. */
function within(path: string, dir: string): boolean {
  return path === dir || dir === "/" || path.startsWith(`${dir}/`);
}

/** What a container keeps: masked and read-only paths, with their list; its mount points. */
interface Guard {
  protected: [path: string, list: string][];
  mountPoints: string[];
}

/**
 * Why a mount at `place` would weaken the container, or `undefined` if it
 * would not.
 *
 * @param place Where the destination leads, from the container's root.
 * @param requested The destination as the config gives it.
 * @param guard The protected paths and the mount points.
 * @param replace Whether stacking on mount points is asked for.
 * @returns The reason, or `undefined`.
 */
export function refusal(
  place: string,
  requested: string,
  guard: Guard,
  replace: boolean,
): string | undefined {
  for (const [path, list] of guard.protected) {
    for (const at of new Set([place, requested])) {
      if (within(at, path)) {
        return at === path ? `in ${list}` : `under ${path}, which is in ${list}`;
      }
      if (within(path, at)) return `would cover ${path}, which is in ${list}`;
    }
  }
  if (replace) return undefined;
  if (guard.mountPoints.includes(place)) {
    return "already a mount point in the container (--replace stacks on it)";
  }
  const under = guard.mountPoints.filter((path) => path !== place && within(path, place));
  const hidden = `${under.length} mount(s) under it, ${under[0]} first`;
  return under.length === 0 ? undefined : `would hide ${hidden} (--replace stacks anyway)`;
}

/** The protected paths of a config, and the mount points under `root` of `mounts`. */
function guardOf(config: Config, mounts: MountPoint[], walkRoot: string, root: string): Guard {
  const guard: Guard = { protected: [], mountPoints: [] };
  for (const list of ["maskedPaths", "readonlyPaths"] as const) {
    for (const path of config.linux?.[list] ?? []) {
      for (const at of new Set([resolveInRoot(undefined, path), resolveInRoot(walkRoot, path)])) {
        guard.protected.push([at, `linux.${list}`]);
      }
    }
  }
  for (const { path } of mounts) {
    if (root === "/") guard.mountPoints.push(path);
    else if (within(path, root)) guard.mountPoints.push(path.slice(root.length) || "/");
  }
  return guard;
}

/** The host ids of the container's uid and gid 0 in the config's mappings, if it has them. */
function containerRoot(context: SpecContext): { uid: number; gid: number } | undefined {
  const zero = (maps?: IDMap[]): number | undefined =>
    maps?.find((m) => m.containerID === 0 && m.size > 0)?.hostID;
  const [uid, gid] = [zero(context.uidMappings), zero(context.gidMappings)];
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

function describe(spec: SpecMount): string {
  const options = (spec.options ?? []).join(",");
  return `${spec.source ?? ""}${options ? ` (${options})` : ""}`;
}

/** Where the newest top mount of `pid` is, among those not in `before`. */
function landed(pid: number, before: MountPoint[]): string | undefined {
  const old = new Set(before.map((m) => m.id));
  const added = readMountPoints(pid).filter((m) => !old.has(m.id));
  const ids = new Set(added.map((m) => m.id));
  return added.findLast((m) => !ids.has(m.parent))?.path;
}

/**
 * Mounts the bind mounts of a config into a process's mount namespace.
 *
 * @param request What to mount, and where.
 * @param print Where each line goes.
 * @returns How many mounts failed.
 */
export async function mountConfig(
  request: Request,
  print: (line: string) => void = console.log,
): Promise<number> {
  const path = resolve(request.config);
  const bundle = dirname(path);
  const config = JSON.parse(Deno.readTextFileSync(path)) as Config;
  if (!Array.isArray(config.mounts)) throw new UsageError(`${path} has no "mounts" array`);
  const context = specContext(config, bundle, request.pid);
  // A running container's root is that of its process; before pivot_root,
  // its root.path, and its sources are paths of that namespace.
  const root = request.rootfs ? resolve(bundle, config.root?.path ?? "rootfs") : "/";
  const sourceIn = request.rootfs ? "namespace" : "caller";
  // The root as mountinfo names it: its links followed in the process's root.
  const rootIn = resolveInRoot(`/proc/${request.pid}/root`, root);
  const prefix = rootIn === "/" ? "" : rootIn;
  const inNamespace = (at: string): string => at === "/" ? prefix || "/" : prefix + at;
  const walkRoot = `/proc/${request.pid}/root${prefix}`;
  const owner = request.rootfs ? containerRoot(context) : undefined; // before pivot_root

  await using ns = request.dryRun
    ? undefined
    : await openMountNamespace(`/proc/${request.pid}/ns/mnt`);
  let failed = 0;
  for (const spec of config.mounts) {
    const destination = String(spec?.destination);
    let mount: Mount;
    try {
      mount = mountFromSpec(spec, context);
    } catch (error) {
      failed++;
      print(`error  ${destination}: ${(error as Error).message}`);
      continue;
    }
    if (!isBind(mount)) {
      print(`skip   ${destination}: ${spec.type ?? "no type"} is not a bind mount`);
      continue;
    }
    const before = readMountPoints(request.pid);
    const place = resolveInRoot(walkRoot, mount.destination);
    const named = (at: string): string =>
      at === inNamespace(mount.destination) ? at : `${at} (for ${mount.destination})`;
    let where = named(inNamespace(place));
    const guard = guardOf(config, before, walkRoot, rootIn);
    const why = refusal(place, resolveInRoot(undefined, mount.destination), guard, request.replace);
    if (why !== undefined) {
      print(`skip   ${where}: ${why}`);
      continue;
    }
    try {
      validateMount(mount, context);
      if (ns === undefined) {
        print(`would  ${where} <- ${mount.source} (${describeMount(mount)})`);
        continue;
      }
      await ns.mountInto(mount, { root, path: mount.destination }, {
        sourceIn,
        create: true,
        owner, // undefined: the container's root, as the namespace knows it
      });
      where = named(landed(request.pid, before) ?? inNamespace(place));
      print(`ok     ${where} <- ${describe(spec)}`);
    } catch (error) {
      if (!(error instanceof MountError || error instanceof TypeError)) throw error;
      failed++;
      print(`error  ${where} <- ${describe(spec)}: ${error.message}`);
    }
  }
  return failed;
}

/** The flags and id mapping of a mount, for --dry-run. */
function describeMount(mount: Mount): string {
  const parts = [stringifyMountFlags(mount.flags)];
  const idMapping = mount.idMapping;
  if (idMapping?.usernsPath) parts.push(`userns=${idMapping.usernsPath}`);
  else if (idMapping) {
    const ranges = (maps?: IDMap[]) =>
      (maps ?? []).map((m) => `${m.containerID}:${m.hostID}:${m.size}`).join(",");
    parts.push(`uids=${ranges(idMapping.uidMappings)}`, `gids=${ranges(idMapping.gidMappings)}`);
  }
  return parts.join(" ");
}

/**
 * Runs the tool.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status.
 */
export async function main(args: string[]): Promise<number> {
  try {
    const request = parseCommandLine(args);
    if (request === "help") {
      console.log(USAGE);
      return 0;
    }
    return (await mountConfig(request)) === 0 ? 0 : 1;
  } catch (error) {
    const usage = error instanceof UsageError;
    console.error(`container-mounts: ${(error as Error).message}`);
    const expected = usage || error instanceof MountError || error instanceof SyntaxError ||
      error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotCapable;
    if (!expected) throw error;
    return usage ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
