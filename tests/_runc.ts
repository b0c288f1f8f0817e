/**
 * Containers started by a real runtime, Debian's runc: a busybox OCI bundle
 * (`runc spec`, or `runc spec --rootless`), run detached with `runc run -d`,
 * entered with `runc exec`, and always removed with `runc delete -f`.
 *
 * @module
 */

import type { Mapping, SpecMount } from "../mod.ts";
import { type ExecResult, makeRootfs, NO_CONTAINER } from "./_container.ts";
import { MODE } from "./_env.ts";

/** Where runc is, if it is installed. */
export const RUNC: string | undefined = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"]
  .find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });

/** Why runc can't start a container here, or `undefined` if it can. */
export const NO_RUNC: string | undefined = RUNC === undefined
  ? "runc is not installed (Debian's runc; .ci/run installs it)"
  : NO_CONTAINER;

/**
 * The unprivileged user that runs rootless runc containers in the root
 * suite: `deno task test` sets `MOUNTFD_TEST_USER` to its test user.
 */
export const TEST_USER: string | undefined = Deno.env.get("MOUNTFD_TEST_USER");

/** Why runc can't run as the test user here, or `undefined` if it can. */
export const NO_TEST_USER: string | undefined = MODE !== "root"
  ? "as root only: the rootless suite runs runc itself"
  : TEST_USER === undefined
  ? "MOUNTFD_TEST_USER is unset (deno task test sets it)"
  : undefined;

/** Options of {@linkcode startRunc}. */
export interface RuncOptions {
  /** Write the config with `runc spec --rootless`. Default false. */
  rootless?: boolean;
  /**
   * Run runc (and own the bundle) as this user, with `runuser`: a rootless
   * container of an unprivileged user. Only as root.
   */
  user?: string;
  /**
   * A user namespace with these maps in the config (ids of this process's
   * namespace, or of `user`'s with `rootless`): the rootfs belongs to the
   * container's root.
   */
  userns?: Mapping;
  /** Mounts added to the config's, after them. */
  mounts?: SpecMount[];
  /**
   * Changes the config (and the bundle) before runc runs it: hooks, files
   * beside config.json.
   */
  prepare?: (config: Record<string, unknown>, bundle: string) => void;
}

/** A container that runc runs. Dispose of it with `await using`: `runc delete -f`. */
export interface RuncContainer extends AsyncDisposable {
  /** Its container id. */
  readonly id: string;
  /** The host pid of its process (`runc state`). */
  readonly pid: number;
  /** The bundle directory: config.json and rootfs. */
  readonly bundle: string;
  /** The path of its config.json. */
  readonly config: string;
  /**
   * A namespace file of its process.
   *
   * @param kind The namespace: "mnt", "user", ...
   * @returns `/proc/PID/ns/KIND`.
   */
  nsPath(kind: string): string;
  /**
   * Runs a busybox applet inside, with `runc exec`.
   *
   * @param args The applet and its arguments.
   * @returns The exit code and output.
   */
  exec(args: string[]): Promise<ExecResult>;
}

const decoder = new TextDecoder();
let serial = 0;

/** Runs a command (as `user`, if set), and returns what it did. */
async function run(user: string | undefined, args: string[]): Promise<ExecResult> {
  const command = user ? ["runuser", "-u", user, "--", ...args] : args;
  const { code, stdout, stderr } = await new Deno.Command(command[0], {
    args: command.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Runs a command that must succeed, and returns its stdout. */
async function must(user: string | undefined, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await run(user, args);
  if (code !== 0) throw new Error(`${args.join(" ")} failed: exit code ${code}: ${stderr.trim()}`);
  return stdout;
}

/** The uid and gid of a user, from `id`. */
async function idsOf(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number(await must(undefined, ["id", "-u", user]));
  const gid = Number(await must(undefined, ["id", "-g", user]));
  return { uid, gid };
}

/** The host id of a map's 0. */
function zeroOf(map: Mapping["uidMappings"]): number | undefined {
  const range = map.find((m) => m.containerID === 0);
  return range?.hostID;
}

/**
 * Makes a busybox bundle with `runc spec` and starts it with `runc run -d`:
 * `sleep` as its process, no terminal, a writable rootfs.
 *
 * @param options Rootless, as whom, a user namespace, more mounts.
 * @returns The running container.
 */
export async function startRunc(options: RuncOptions = {}): Promise<RuncContainer> {
  if (NO_RUNC) throw new Error(`Cannot start a runc container: ${NO_RUNC}`);
  const { user, userns } = options;
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-runc-" });
  const id = `mountfd-${Deno.pid}-${++serial}`;
  const bundle = `${dir}/bundle`;
  const state = `${dir}/state`;
  const runc = [RUNC!, "--root", state];
  let started = false;
  try {
    // The container's root searches its way to the rootfs from the host's tree.
    Deno.chmodSync(dir, 0o755);
    Deno.mkdirSync(bundle, { mode: 0o755 });
    const owner = user ? await idsOf(user) : undefined;
    if (owner) Deno.chownSync(dir, owner.uid, owner.gid);
    if (owner) Deno.chownSync(bundle, owner.uid, owner.gid);
    await must(user, [RUNC!, "spec", ...(options.rootless ? ["--rootless"] : []), "-b", bundle]);
    const config = JSON.parse(Deno.readTextFileSync(`${bundle}/config.json`));
    config.process.terminal = false;
    config.process.args = ["/bin/busybox", "sleep", "3600"];
    config.root.readonly = false;
    config.mounts.push(...options.mounts ?? []);
    if (userns) {
      const namespaces: { type: string }[] = config.linux.namespaces;
      if (!namespaces.some((ns) => ns.type === "user")) namespaces.push({ type: "user" });
      config.linux.uidMappings = userns.uidMappings;
      config.linux.gidMappings = userns.gidMappings;
    }
    options.prepare?.(config, bundle);
    Deno.writeTextFileSync(`${bundle}/config.json`, JSON.stringify(config, null, 2));
    Deno.mkdirSync(`${bundle}/rootfs`);
    const uid = userns ? zeroOf(userns.uidMappings) : owner?.uid;
    const gid = userns ? zeroOf(userns.gidMappings) : owner?.gid;
    makeRootfs(
      `${bundle}/rootfs`,
      uid !== undefined && gid !== undefined ? { uid, gid } : undefined,
    );
    if (owner) Deno.chownSync(`${bundle}/config.json`, owner.uid, owner.gid);
    // runc gives the container its stdio: a file, not a pipe that would stay open.
    const log = `${dir}/run.log`;
    Deno.writeTextFileSync(log, "");
    if (owner) Deno.chownSync(log, owner.uid, owner.gid);
    const result = await run(user, [
      "sh",
      "-c",
      'log=$1; shift; exec "$@" </dev/null >"$log" 2>&1',
      "sh",
      log,
      ...runc,
      "run",
      "-d",
      "-b",
      bundle,
      id,
    ]);
    started = true;
    if (result.code !== 0) {
      throw new Error(
        `runc run failed: exit code ${result.code}: ${Deno.readTextFileSync(log).trim()}`,
      );
    }
    const pid = JSON.parse(await must(user, [...runc, "state", id])).pid as number;
    return new Runc(id, pid, bundle, dir, runc, user);
  } catch (error) {
    if (started) await run(user, [...runc, "delete", "-f", id]);
    Deno.removeSync(dir, { recursive: true });
    throw error;
  }
}

class Runc implements RuncContainer {
  readonly config: string;

  constructor(
    readonly id: string,
    readonly pid: number,
    readonly bundle: string,
    readonly dir: string,
    readonly runc: string[],
    readonly user: string | undefined,
  ) {
    this.config = `${bundle}/config.json`;
  }

  nsPath(kind: string): string {
    return `/proc/${this.pid}/ns/${kind}`;
  }

  exec(args: string[]): Promise<ExecResult> {
    return run(this.user, [...this.runc, "exec", this.id, "/bin/busybox", ...args]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await must(this.user, [...this.runc, "delete", "-f", this.id]);
    } finally {
      await Deno.remove(this.dir, { recursive: true });
    }
  }
}
