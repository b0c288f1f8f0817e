/**
 * container-mounts: mount the bind mounts of an OCI `config.json` into a
 * running container, the process PID: id maps, flags, propagation and
 * recursive attributes, each destination kept inside the container's root.
 *
 *     deno run --allow-ffi --allow-run=unshare --allow-read \
 *       examples/container_mounts.ts [--rootfs] [--dry-run] config.json PID
 *
 * It prints one line per mount of the config. Exit status: 0 when every bind
 * mount was mounted, 1 when one failed, 2 for bad usage.
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

const USAGE = `Usage: container-mounts [--rootfs] [--dry-run] <config.json> <pid>

Mount every bind mount of an OCI runtime-spec config.json into the running
container <pid>, with its id mapping, flags, propagation and recursive
attributes. One line per mount of the config.

Sources are host paths (relative ones resolve against the directory of
config.json); destinations are paths inside the container's root, which no
symbolic link in the container can leave, created if missing. "idmap" and
"ridmap" without mappings of their own use the config's linux.uidMappings
and linux.gidMappings, or the path of its user namespace in
linux.namespaces, or else the user namespace of <pid>. Other mounts (proc,
tmpfs ...) are skipped.

Options:
  --rootfs    Before pivot_root (a createRuntime hook): sources are paths
              of <pid>'s mount namespace, destinations go under the
              config's root.path (resolved against the directory of
              config.json).
  --dry-run   Print what would be mounted, and mount nothing.
  -h, --help  Show this help.

Exit status: 0 all mounted, 1 a mount failed, 2 bad usage.`;

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
  };
}

/** What the command line asks for. */
export interface Request {
  /** The path of config.json. */
  config: string;
  /** The process whose mount namespace the mounts go into. */
  pid: number;
  /** Mount under the config's root.path, before pivot_root. */
  rootfs: boolean;
  /** Print what would be mounted, and mount nothing. */
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
  return { config, pid, rootfs: values.rootfs === true, dryRun: values["dry-run"] === true };
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

function describe(spec: SpecMount): string {
  const options = (spec.options ?? []).join(",");
  return `${spec.source ?? ""}${options ? ` (${options})` : ""}`;
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
  // A running container's root is "/" of its namespace; before pivot_root,
  // its root.path, and its sources are paths of that namespace.
  const root = request.rootfs ? resolve(bundle, config.root?.path ?? "rootfs") : "/";
  const sourceIn = request.rootfs ? "namespace" : "caller";

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
    const where = `${root === "/" ? "" : root}${mount.destination}`;
    try {
      validateMount(mount, context);
      if (ns === undefined) {
        print(`would  ${where} <- ${mount.source} (${describeMount(mount)})`);
        continue;
      }
      await ns.mountInto(mount, { root, path: mount.destination }, { sourceIn, create: true });
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
