/**
 * A helper process in a mount namespace of its own, holding a tmpfs that
 * only it sees: the "container" of the mount namespace tests; and what those
 * tests share: the helper they start, their bind mounts and options.
 *
 * @module
 */

import { type Mount, type MountIDMapping, MS_BIND } from "../mod.ts";
import type { Fixture } from "./_fixture.ts";

/** Options of {@linkcode NamespaceHelper.start}. */
export interface HelperOptions {
  /**
   * Give the helper a user namespace of its own too: its mount namespace is
   * then less privileged than ours, and the mounts it copies have their
   * flags locked.
   */
  user?: boolean;
  /** Shell commands run inside before it reports ready, with `$DIR` set. */
  setup?: string;
}

const decoder = new TextDecoder();

/**
 * A process in a new private mount namespace with a tmpfs at `dir`. The
 * directory exists outside too, empty. Kill it with `await using`.
 */
export class NamespaceHelper implements AsyncDisposable {
  /** The helper's pid. */
  readonly pid: number;
  /** Where its tmpfs is mounted, in its namespace. */
  readonly dir: string;
  readonly #child: Deno.ChildProcess;

  private constructor(child: Deno.ChildProcess, dir: string) {
    this.#child = child;
    this.pid = child.pid;
    this.dir = dir;
  }

  /** Its mount namespace file. */
  get nsPath(): string {
    return `/proc/${this.pid}/ns/mnt`;
  }

  /**
   * Starts a helper, and waits until its tmpfs is mounted and set up.
   *
   * @param dir An existing, empty directory.
   * @param options A user namespace, and setup commands.
   * @returns The running helper.
   */
  static async start(dir: string, options: HelperOptions = {}): Promise<NamespaceHelper> {
    const script = 'mount -t tmpfs -o mode=0755,size=4m none "$DIR" && ' +
      `${options.setup ?? "true"} && echo ready && exec cat >/dev/null`;
    const child = new Deno.Command("unshare", {
      args: [
        ...(options.user ? ["--user", "--map-root-user"] : []),
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-ec",
        script,
      ],
      env: { DIR: dir },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const helper = new NamespaceHelper(child, dir);
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    if (decoder.decode(value ?? new Uint8Array()).trim() !== "ready") {
      try {
        child.kill("SIGKILL");
      } catch {
        // It has exited already.
      }
      await child.stdin.close().catch(() => {});
      const errors = await new Response(child.stderr).text();
      await child.status;
      throw new Error(`The namespace helper failed to start: ${errors}`);
    }
    return helper;
  }

  /**
   * A path inside the helper's mount namespace, seen from outside through
   * `/proc/PID/root`.
   *
   * @param path An absolute path in the namespace.
   * @returns The same file, as this process can reach it.
   */
  inside(path: string): string {
    return `/proc/${this.pid}/root${path}`;
  }

  /** Kills and reaps the helper. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
    await this.#child.stdin.close().catch(() => {});
    await this.#child.stderr.cancel().catch(() => {});
    await this.#child.status;
  }
}

/**
 * The threads of this process whose mount namespace is `nsPath`'s.
 *
 * @param nsPath A mount namespace file.
 * @returns Their thread ids and names.
 */
export function threadsIn(nsPath: string): string[] {
  const ns = Deno.readLinkSync(nsPath);
  const threads: string[] = [];
  for (const { name } of Deno.readDirSync("/proc/self/task")) {
    try {
      if (Deno.readLinkSync(`/proc/self/task/${name}/ns/mnt`) !== ns) continue;
      threads.push(`${name}:${Deno.readTextFileSync(`/proc/self/task/${name}/comm`).trim()}`);
    } catch {
      // The thread has ended.
    }
  }
  return threads;
}

/**
 * A helper whose tmpfs at fx/ns holds src/file and empty mount points.
 *
 * @param fx The fixture to make `ns` in.
 * @param options Whether the helper has a user namespace of its own.
 * @returns The started helper.
 */
export function startHelper(
  fx: Fixture,
  options: { user?: boolean } = {},
): Promise<NamespaceHelper> {
  return NamespaceHelper.start(fx.mkdir("ns"), {
    ...options,
    setup: 'mkdir "$DIR/src" "$DIR/t1" "$DIR/t2" "$DIR/t3" && echo inside >"$DIR/src/file"',
  });
}

/** Options of the mount namespace tests: their sources are inside the namespace only. */
export const IN_NS = { sourceIn: "namespace" } as const;

/**
 * A bind mount of `source`, to `/d`.
 *
 * @param source The path to bind.
 * @param idMapping Its id mapping, if any.
 * @param extra Other fields of the mount, which win.
 * @returns The mount.
 */
export function bind(
  source: string,
  idMapping?: MountIDMapping,
  extra: Partial<Mount> = {},
): Mount {
  return { source, destination: "/d", flags: MS_BIND, idMapping, ...extra };
}
