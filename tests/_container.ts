/**
 * A real pivoted container for tests: a process in new mount and pid
 * namespaces (and, on request, a new user namespace) that bind-mounts a small
 * busybox rootfs onto itself, `pivot_root`s into it, detaches the old root and
 * waits. Nothing of the host's tree is visible inside afterwards.
 *
 * It needs Debian's busybox-static (`/bin/busybox`, one static file), and
 * util-linux `unshare` and `nsenter` on the host.
 *
 * @module
 */

import type { IDMap, Mapping } from "../mod.ts";
import { MODE } from "./_env.ts";
import { bareHelper } from "./_process.ts";
import { makeRootfs, NO_CONTAINER } from "./_rootfs.ts";

export { BUSYBOX, makeRootfs, NO_CONTAINER } from "./_rootfs.ts";

/** Where the static busybox is read from. */
/**
 * A user namespace for a container, as a runtime would give it: its root is
 * not ours. As root, 65536 ids from 100000; rootless, the ids 1..65535 of
 * this namespace (its 0 is the user who started it). Rootless, it needs the
 * 65536 ids of a subordinate range (`NO_ID_RANGE` in _env.ts).
 */
export const CONTAINER_USERNS: Mapping = (() => {
  const [hostID, size] = MODE === "root" ? [100000, 65536] : [1, 65535];
  return {
    uidMappings: [{ containerID: 0, hostID, size }],
    gidMappings: [{ containerID: 0, hostID, size }],
  };
})();

/** Options of {@linkcode startContainer}. */
export interface ContainerOptions {
  /**
   * Give the container a new user namespace with these maps, written from
   * this process (`hostID` is an id of this process's user namespace). The
   * rootfs is then owned by the container's root, if the maps have one, and
   * `exec` runs as that root. Rootless, the maps must lie within the ids this
   * namespace maps.
   */
  userns?: Mapping;
  /** Mount a proc of the container's own at /proc. Default true. */
  proc?: boolean;
  /**
   * Only chroot into the rootfs, as a runtime's no-pivot mode does: the
   * mount namespace's root stays the host's. Default false (pivot_root).
   */
  chroot?: boolean;
  /** Bind the host's /proc at /hostproc, as a host-PID container sees it. Default false. */
  hostProc?: boolean;
  /**
   * The directory the rootfs directory is made in. Default: the system's
   * temporary directory. With `userns`, the container's root must be able
   * to search it (the init starts from the host's tree).
   */
  dir?: string;
  /** How long to wait for the container to be ready, in ms. Default 10000. */
  timeout?: number;
}

/** What a command run inside a container did. */
export interface ExecResult {
  /** Its exit code. */
  code: number;
  /** Its standard output. */
  stdout: string;
  /** Its standard error. */
  stderr: string;
}

/** A running container. Dispose of it with `await using`. */
export interface Container extends AsyncDisposable {
  /** The host-side pid of its init process (pid 1 inside). */
  readonly pid: number;
  /** The host path of its rootfs directory. */
  readonly rootfs: string;
  /**
   * A namespace file of its init.
   *
   * @param kind The namespace: "mnt", "user", "pid", ...
   * @returns `/proc/PID/ns/KIND`.
   */
  nsPath(kind: string): string;
  /**
   * Runs a busybox applet inside: its mount and pid namespaces, its root and
   * cwd, and its user namespace (as its root) when it has one of its own.
   *
   * @param args The applet and its arguments, e.g. `["ls", "/"]`.
   * @returns The exit code and output.
   */
  exec(args: string[]): Promise<ExecResult>;
}

const decoder = new TextDecoder();

/** The host id a container's id 0 maps to, or `undefined`. */
function rootOf(map: IDMap[]): number | undefined {
  const range = map.find((m) => m.containerID <= 0 && 0 < m.containerID + m.size);
  return range && range.hostID - range.containerID;
}

/** The text of a uid_map or gid_map. */
function mapText(map: IDMap[]): string {
  return map.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join("");
}

/**
 * The container's init (`busybox sh -c`; `$R` the rootfs, `$PROC`, `$CHROOT`,
 * `$HOSTPROC`). It reads its host pid while the host's /proc is there, makes
 * the rootfs a mount of its own, mounts proc (a user namespace may mount it
 * only where one is fully visible), pivots (or only chroots), detaches the
 * old root, and re-executes itself with a clean environment, so that not even
 * its command line names a host path. It reports "ready PID" and lives until
 * its stdin closes.
 */
const INIT = `set -e
read -r pid _ </proc/self/stat
B="$R/bin/busybox"
$B mount -o bind "$R" "$R"
if [ "$PROC" = 1 ]; then $B mount -t proc proc "$R/proc"; fi
if [ "$HOSTPROC" = 1 ]; then $B mkdir "$R/hostproc" && $B mount --rbind /proc "$R/hostproc"; fi
if [ "$CHROOT" = 1 ]; then
  exec $B chroot "$R" /bin/busybox env -i PATH=/bin HOME=/ /bin/busybox sh -c \\
    'echo "ready $0"; while read -r _; do :; done' "$pid"
fi
cd "$R"
$B pivot_root . .
/bin/busybox umount -l .
cd /
exec /bin/busybox env -i PATH=/bin HOME=/ /bin/busybox sh -c \\
  'echo "ready $0"; while read -r _; do :; done' "$pid"
`;

/**
 * The start time of a process, in clock ticks since boot, or `undefined`
 * once it is gone: with the pid, it names one process, not a reused pid.
 */
export function startTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** `promise`, or "timeout" after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kills a child process if it still runs, and reaps it. */
async function reap(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // It has exited already.
  }
  await child.status;
}

/** Closes what is left of a child's pipes. */
async function closePipes(child: Deno.ChildProcess): Promise<void> {
  await child.stdin.close().catch(() => {});
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel().catch(() => {});
}

/**
 * A process in a new user namespace, held until the container has joined it:
 * `unshare --user busybox cat`, with its maps written from here.
 */
async function startUserns(
  rootfs: string,
  userns: Mapping,
): Promise<{ pid: number; close(): Promise<void> }> {
  // Once cat echoes, unshare has made the namespace.
  const helper = await bareHelper([`${rootfs}/bin/busybox`, "cat"]);
  const close = (): Promise<void> => helper[Symbol.asyncDispose]();
  try {
    const maps: [string, IDMap[]][] = [
      ["uid_map", userns.uidMappings],
      ["gid_map", userns.gidMappings],
    ];
    for (const [file, map] of maps) {
      const text = mapText(map);
      try {
        Deno.writeTextFileSync(`/proc/${helper.pid}/${file}`, text);
      } catch (error) {
        throw new Error(
          `Cannot write the container's ${file}: ${(error as Error).message}: ` +
            JSON.stringify(text),
          { cause: error },
        );
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { pid: helper.pid, close };
}

/**
 * Reads the child's stdout up to the first newline.
 *
 * @returns The line, or `undefined` at end of file.
 */
async function readLine(child: Deno.ChildProcess): Promise<string | undefined> {
  const reader = child.stdout.getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      text += decoder.decode(value, { stream: true });
    }
    return text.slice(0, text.indexOf("\n"));
  } finally {
    reader.releaseLock();
  }
}

/**
 * Starts a container and waits until it has pivoted into its rootfs.
 *
 * @param options A user namespace of its own, its /proc, where its rootfs goes.
 * @returns The running container.
 */
export async function startContainer(options: ContainerOptions = {}): Promise<Container> {
  if (NO_CONTAINER) throw new Error(`Cannot start a container: ${NO_CONTAINER}`);
  const rootfs = Deno.makeTempDirSync({ dir: options.dir, prefix: "mountfd-container-" });
  let holder: { pid: number; close(): Promise<void> } | undefined;
  let child: Deno.ChildProcess | undefined;
  try {
    const uid = options.userns && rootOf(options.userns.uidMappings);
    const gid = options.userns && rootOf(options.userns.gidMappings);
    makeRootfs(rootfs, uid !== undefined && gid !== undefined ? { uid, gid } : undefined);
    const unshare = [
      "unshare",
      "--mount",
      "--pid",
      "--fork",
      "--kill-child",
      "--propagation",
      "private",
      "--",
      `${rootfs}/bin/busybox`,
      "sh",
      "-c",
      INIT,
    ];
    let command = unshare;
    if (options.userns) {
      holder = await startUserns(rootfs, options.userns);
      // nsenter becomes root of the new user namespace (setgid, setuid 0),
      // so unshare and the init keep their capabilities across exec.
      command = ["nsenter", `--user=/proc/${holder.pid}/ns/user`, "--", ...unshare];
    }
    child = new Deno.Command(command[0], {
      args: command.slice(1),
      env: {
        R: rootfs,
        PROC: options.proc === false ? "0" : "1",
        CHROOT: options.chroot ? "1" : "0",
        HOSTPROC: options.hostProc ? "1" : "0",
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reading = readLine(child);
    const line = await withTimeout(reading, options.timeout ?? 10000);
    const match = line?.match(/^ready (\d+)$/);
    if (!match) {
      await reap(child);
      // Its init reads stdin until EOF: one that missed unshare's death
      // signal (killed before it was set) ends there, and so does its stdout.
      await child.stdin.close().catch(() => {});
      await reading; // the end of file, now: the reader is released
      const errors = (await new Response(child.stderr).text()).trim();
      const why = line === "timeout"
        ? "no ready line in time"
        : line === undefined
        ? "it exited"
        : `it printed ${JSON.stringify(line)}`;
      throw new Error(`The container failed to start: ${why}${errors ? `: ${errors}` : ""}`);
    }
    await holder?.close();
    holder = undefined;
    return new RunningContainer(child, Number(match[1]), rootfs, options.userns !== undefined);
  } catch (error) {
    if (child) {
      await reap(child);
      await closePipes(child);
    }
    await holder?.close();
    Deno.removeSync(rootfs, { recursive: true });
    throw error;
  }
}

class RunningContainer implements Container {
  readonly pid: number;
  readonly rootfs: string;
  readonly #child: Deno.ChildProcess;
  readonly #start: string | undefined;
  readonly #userns: boolean;

  constructor(child: Deno.ChildProcess, pid: number, rootfs: string, userns: boolean) {
    this.#child = child;
    this.pid = pid;
    this.rootfs = rootfs;
    this.#userns = userns;
    this.#start = startTime(pid);
  }

  nsPath(kind: string): string {
    return `/proc/${this.pid}/ns/${kind}`;
  }

  async exec(args: string[]): Promise<ExecResult> {
    const { code, stdout, stderr } = await new Deno.Command("nsenter", {
      args: [
        "-t",
        String(this.pid),
        "-m",
        "-p",
        ...(this.#userns ? ["-U"] : []),
        "-r",
        "-w",
        "--",
        "/bin/busybox",
        ...args,
      ],
      clearEnv: true,
      env: { PATH: "/bin", HOME: "/" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  }

  /**
   * Kills the init (which takes every process of its pid namespace with it),
   * reaps unshare, which reaps the init, and removes the rootfs.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    // unshare reaps the init only once it has died, so the pid is the init's
    // as long as unshare runs; the start time guards against a reused pid.
    if (this.#start !== undefined && startTime(this.pid) === this.#start) {
      try {
        Deno.kill(this.pid, "SIGKILL");
      } catch {
        // It has exited already.
      }
    }
    if (await withTimeout(this.#child.status, 10000) === "timeout") {
      // Should it hang, unshare --kill-child takes the init with it; wait a
      // little for that.
      await reap(this.#child);
      for (let i = 0; i < 100 && startTime(this.pid) === this.#start; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await closePipes(this.#child);
    await Deno.remove(this.rootfs, { recursive: true });
  }
}
