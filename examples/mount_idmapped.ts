/**
 * mount-idmapped: make an id-mapped mount from the command line, with the
 * interface of Christian Brauner's tool of that name.
 *
 *     deno run --allow-ffi --allow-run=unshare --allow-read examples/mount_idmapped.ts \
 *       --map-mount=b:0:100000:65536 /srv/data /mnt/data
 *
 * The mount is attached in the caller's mount namespace. Exit status: 0 when
 * mounted, 1 when a syscall or helper failed, 2 for bad usage (the C tool
 * exits 0 after printing its usage; 2 is the usual status of a usage error).
 *
 * It imports only `mod.ts`, as any user's program would. `deno task
 * mount-idmapped` runs this file.
 *
 * @module
 */

import {
  attachMountSource,
  type IDMap,
  type Mount,
  MountError,
  mountFd,
  MS_BIND,
  MS_REC,
  validateMount,
} from "../mod.ts";

const USAGE =
  `Usage: mount-idmapped --map-mount=<idmap> [--map-mount=<idmap>]... [--recursive] <source> <target>

Create an id-mapped mount of <source> at <target>, in this mount namespace.

Options:
  --map-mount=<type>:<from>:<to>:<range>
        Map ids <from>..<from>+<range>-1 on disk to <to>..<to>+<range>-1
        through the mount. <type> is "b" or "both" (uids and gids), "u" or
        "uid", "g" or "gid". Repeatable, up to 340 ranges of each kind; uids
        and gids both need at least one.
  --map-mount=/proc/<pid>/ns/user
        Use the mapping of that user namespace.
  --recursive
        Mount the whole tree below <source> (rbind), and id-map all of it.
  -h, --help
        Show this help.

Examples:
  mount-idmapped --map-mount=b:0:10000:10000 /source /target
  mount-idmapped --map-mount=u:0:10000:10000 --map-mount=g:0:20000:20000 /source /target
  mount-idmapped --map-mount=/proc/1234/ns/user --recursive /source /target

Exit status: 0 mounted, 1 the mount failed, 2 bad usage.`;

/** Bad usage: printed as one line, exit status 2. */
class UsageError extends Error {}

const HELP = "see mount-idmapped --help";

const RANGE = /^(b|both|u|uid|g|gid):(\d+):(\d+):(\d+)$/;

/** The options, and the positionals, of a command line. */
interface Options {
  maps: string[];
  recursive: boolean;
  help: boolean;
  positionals: string[];
}

/**
 * Reads the options much as `parseArgs` does in strict mode, without loading
 * `node:util` (which costs more than the rest of the start): `--map-mount`
 * takes a value (`--map-mount=V` or `--map-mount V`), `--recursive` and
 * `-h`/`--help` take none, `--` ends the options, and anything else that
 * starts with `-` is an unknown option.
 */
function readOptions(args: string[]): Options {
  const options: Options = { maps: [], recursive: false, help: false, positionals: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      options.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      options.positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const name = arg.startsWith("--") && equals > 0 ? arg.slice(0, equals) : arg;
    const value = name === arg ? undefined : arg.slice(equals + 1);
    switch (name) {
      case "--map-mount":
        if (value !== undefined) {
          options.maps.push(value);
        } else if (i + 1 < args.length) {
          options.maps.push(args[++i]);
        } else {
          throw new UsageError(`option --map-mount needs a value: ${HELP}`);
        }
        break;
      case "--recursive":
      case "--help":
      case "-h":
        if (value !== undefined) throw new UsageError(`option ${name} takes no value: ${HELP}`);
        if (name === "--recursive") options.recursive = true;
        else options.help = true;
        break;
      default:
        throw new UsageError(`unknown option ${JSON.stringify(name)}: ${HELP}`);
    }
  }
  return options;
}

/** An absolute target: a relative one names a path under the working directory, as in mount(2). */
function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/**
 * Turns the command line into a mount.
 *
 * @param args The arguments, without the program name.
 * @returns The mount, or `"help"`.
 */
export function parseCommandLine(args: string[]): Mount | "help" {
  const { maps, recursive, help, positionals } = readOptions(args);
  if (help) return "help";
  if (positionals.length !== 2) {
    throw new UsageError(
      `expected <source> and <target>, got ${positionals.length} argument(s): ${HELP}`,
    );
  }
  if (maps.length === 0) throw new UsageError(`at least one --map-mount is needed: ${HELP}`);
  const [source, target] = positionals;
  const mount: Mount = {
    source,
    destination: absolute(target),
    flags: recursive ? MS_BIND | MS_REC : MS_BIND,
  };
  const paths = maps.filter((map) => map.startsWith("/"));
  if (paths.length > 0) {
    if (maps.length > 1) {
      throw new UsageError("a user namespace path can't be combined with other --map-mount");
    }
    mount.idMapping = { recursive, usernsPath: paths[0] };
    return mount;
  }
  const uidMappings: IDMap[] = [];
  const gidMappings: IDMap[] = [];
  for (const map of maps) {
    const match = RANGE.exec(map);
    if (!match) {
      throw new UsageError(
        `invalid --map-mount ${JSON.stringify(map)}: expected ` +
          "<b|u|g>:<from>:<to>:<range> or /proc/<pid>/ns/user",
      );
    }
    const [type, from, to, range] = [match[1][0], ...match.slice(2).map(Number)] as [
      string,
      number,
      number,
      number,
    ];
    const entry = { containerID: from, hostID: to, size: range };
    if (type !== "g") uidMappings.push(entry);
    if (type !== "u") gidMappings.push({ ...entry });
  }
  if (uidMappings.length === 0 || gidMappings.length === 0) {
    throw new UsageError(
      `no ${uidMappings.length === 0 ? "uid" : "gid"} mappings: add a ` +
        `--map-mount=${uidMappings.length === 0 ? "u" : "g"}:... or use b:...`,
    );
  }
  mount.idMapping = { recursive, uidMappings, gidMappings };
  return mount;
}

/**
 * Runs the tool.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status.
 */
export async function main(args: string[]): Promise<number> {
  try {
    const mount = parseCommandLine(args);
    if (mount === "help") {
      console.log(USAGE);
      return 0;
    }
    validateMount(mount);
    using source = await mountFd(mount);
    attachMountSource(source, mount.destination);
    return 0;
  } catch (error) {
    const failed = error instanceof MountError;
    const usage = error instanceof UsageError || error instanceof TypeError ||
      (failed && (error as MountError).op === "validate");
    console.error(`mount-idmapped: ${(error as Error).message}`);
    if (!usage && !failed && !(error instanceof Deno.errors.NotCapable)) throw error;
    return usage ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
