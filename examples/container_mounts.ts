/**
 * container-mounts: mount the bind mounts of an OCI `config.json` into the
 * mount namespace of a running process, as runc's mount source thread and
 * rootfs code would: id maps, flags, propagation and recursive attributes.
 *
 *     deno run --allow-ffi --allow-run=unshare --allow-read \
 *       examples/container_mounts.ts [--rootfs] config.json PID
 *
 * It prints one line per mount of the config. Exit status: 0 when every bind
 * mount was mounted, 1 when one failed, 2 for bad usage.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
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
  validateMount,
} from "../mod.ts";

const USAGE = `Usage: container-mounts [--rootfs] <config.json> <pid>

Mount every bind mount of an OCI runtime-spec config.json into the mount
namespace of process <pid>, with its id mapping, flags, propagation and
recursive attributes. One line per mount of the config.

Sources and destinations are paths in that namespace, as in runc's mount
source thread; relative sources resolve against the directory of
config.json. "idmap" and "ridmap" without mappings of their own use the
config's linux.uidMappings and linux.gidMappings, or the path of its user
namespace in linux.namespaces. Other mounts (proc, tmpfs ...) are skipped.

Options:
  --rootfs    Mount under the config's root.path (resolved against the
              directory of config.json), for a namespace that has not
              pivoted into the container's root yet.
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
  /** Mount under the config's root.path. */
  rootfs: boolean;
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
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
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
  return { config, pid, rootfs: values.rootfs === true };
}

/**
 * The container's user namespace, as `mountFromSpec` takes it.
 *
 * @param config The config.
 * @param bundle The directory of config.json.
 * @returns The context.
 */
export function specContext(config: Config, bundle: string): SpecContext {
  const linux = config.linux ?? {};
  const context: SpecContext = { cwd: bundle };
  const userns = linux.namespaces?.find((ns) => ns.type === "user")?.path;
  if (userns) context.usernsPath = userns;
  if (linux.uidMappings) context.uidMappings = linux.uidMappings;
  if (linux.gidMappings) context.gidMappings = linux.gidMappings;
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
  const context = specContext(config, bundle);
  const root = request.rootfs ? resolve(bundle, config.root?.path ?? "rootfs") : "/";

  await using ns = await openMountNamespace(`/proc/${request.pid}/ns/mnt`);
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
    const target = join(root, mount.destination);
    try {
      validateMount(mount, context);
      await ns.mountInto(mount, target);
      print(`ok     ${target} <- ${describe(spec)}`);
    } catch (error) {
      if (!(error instanceof MountError || error instanceof TypeError)) throw error;
      failed++;
      print(`error  ${target} <- ${describe(spec)}: ${error.message}`);
    }
  }
  return failed;
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
