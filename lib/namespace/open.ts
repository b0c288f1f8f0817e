/**
 * Opening another mount namespace: {@linkcode openMountNamespace}.
 *
 * @module
 */

import { errnoValue } from "../../ffi/errno.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { PermissionError } from "../../ffi/permission_error.ts";
import { within } from "../async.ts";
import { assertPath } from "../check.ts";
import { describe } from "../errors.ts";
import { openNamespaceFile } from "../namespace_file.ts";
import { Handles } from "../userns/handles.ts";
import type { MountNamespace, MountNamespaceOptions } from "./mount_namespace.ts";
import { assertStillIn, namespaceProcess } from "./process.ts";
import type { WorkerMountNamespace } from "./worker_namespace.ts";

const DEFAULT_TIMEOUT = 10_000;
const WORKER_URL = new URL("./worker.ts", import.meta.url);
/** The directory of mod.ts, lib/ and ffi/. */
const MODULE_ROOT = new URL("../..", import.meta.url);

/**
 * Opens a mount namespace, such as `/proc/PID/ns/mnt` of a container's
 * process, with a dedicated Worker whose thread does `unshare(CLONE_FS)` and
 * `setns(CLONE_NEWNS)` into it, as runc's mount source thread does. The main
 * thread never changes namespace.
 *
 * Inside the namespace, relative targets resolve from its root. User
 * namespaces for id mappings are made on the main thread.
 *
 * @param nsPath The namespace file.
 * @param options The user namespace cache, and a timeout.
 * @returns The namespace; close it when done.
 * @throws {TypeError} For a bad path or option, before any syscall.
 * @throws {MountError} With op `"open"` for a path that can't be opened,
 * `"open mntns"` for a file that is no mount namespace, `"setns(CLONE_NEWNS)"`
 * (EPERM) without the privilege to join it, `"mount namespace worker"` if the
 * Worker dies or does not start in time.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`, or read access to
 * this module's files (the Worker loads them).
 *
 * @example Open a container's mount namespace
 * ```ts
 * import { openMountNamespace } from "@mountfd/mountfd";
 *
 * await using ns = await openMountNamespace("/proc/1234/ns/mnt");
 * ```
 */
export async function openMountNamespace(
  nsPath: string,
  options?: MountNamespaceOptions,
): Promise<MountNamespace> {
  try {
    return await openNamespace(nsPath, options ?? {}, WORKER_URL);
  } catch (error) {
    throw PermissionError.in(error, "openMountNamespace");
  }
}

/**
 * {@linkcode openMountNamespace} with the Worker's module given: tests run
 * one that adds requests of their own, and a subclass that sends them. The
 * main thread's side of the Worker is loaded here, on the first call, not
 * when the module is imported.
 *
 * @param nsPath The namespace file.
 * @param options The user namespace cache, and a timeout.
 * @param workerUrl The Worker's module.
 * @param Class The namespace's class.
 * @returns The namespace.
 */
export async function openNamespace<T extends WorkerMountNamespace = WorkerMountNamespace>(
  nsPath: string,
  options: MountNamespaceOptions,
  workerUrl: URL,
  Class?: typeof WorkerMountNamespace,
): Promise<T> {
  assertPath(nsPath, "nsPath");
  const { timeout = DEFAULT_TIMEOUT, closeTimeout = DEFAULT_TIMEOUT } = options;
  for (const [name, value] of [["timeout", timeout], ["closeTimeout", closeTimeout]] as const) {
    if (!(value > 0)) {
      throw new TypeError(
        `Invalid ${name}: expected a positive number of ms, got ${describe(value)}`,
      );
    }
  }
  if (options.handles !== undefined && !(options.handles instanceof Handles)) {
    throw new TypeError(`Invalid handles: expected a Handles, got ${describe(options.handles)}`);
  }
  using nsFd = openNamespaceFile(nsPath, "mnt");
  assertWorkerLoadable(workerUrl);
  const [{ WorkerMountNamespace }, { WORKER_OP }] = await Promise.all([
    import("./worker_namespace.ts"),
    import("./rpc.ts"),
  ]);
  const process = namespaceProcess(nsPath, nsFd.fd);
  let ns: T;
  try {
    ns = new (Class ?? WorkerMountNamespace)(nsPath, workerUrl, options.handles, closeTimeout) as T;
  } catch (error) {
    process?.root.close();
    throw error;
  }
  try {
    // The namespace takes the process's root, and closes it.
    const joined = ns.join(nsFd.fd, process);
    if (!await within(joined, timeout)) {
      throw new MountError(WORKER_OP, {
        errno: errnoValue("ETIMEDOUT"),
        target: nsPath,
        detail: `the worker did not join the namespace within ${timeout} ms`,
      });
    }
    if (process !== undefined) assertStillIn(process, await joined, nsPath);
  } catch (error) {
    await ns.close();
    throw error;
  }
  return ns;
}

/**
 * A Worker loads its modules under its own permissions: from files, this
 * module's files need read access. Says so before anything starts.
 */
function assertWorkerLoadable(workerUrl: URL): void {
  if (workerUrl.protocol !== "file:") return;
  const path = decodeURIComponent(MODULE_ROOT.pathname); // the Worker loads lib/ and ffi/
  if (Deno.permissions.querySync({ name: "read", path }).state === "granted") return;
  throw new PermissionError(`--allow-read=${path}`, "load the modules of its Worker");
}
