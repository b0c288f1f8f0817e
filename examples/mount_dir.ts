/**
 * mount-dir: asks the mount broker for an id-mapped mount of a directory of
 * the caller's, and attaches it. Run it inside the caller's own user and
 * mount namespaces (`unshare --user --map-auto --map-root-user --mount`,
 * `podman unshare`, or `nsenter --target PID --user --mount
 * --preserve-credentials` into one's own rootless container):
 *
 *     deno task mount-dir [--socket S] [--ro] [--as UID:GID] SRC DST
 *
 * The caller's files in SRC show as 0:0 in its user namespace, or as
 * UID:GID with `--as`. With `--pid PID`, DST is a path inside the root of
 * process PID, such as a container's init, attached through its mount
 * namespace (`openMountNamespace`): run it in the container's user namespace
 * then (`podman unshare`). Exit status: 0 when mounted, 1 when refused or
 * failed, 2 for bad usage.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  attachMountSource,
  DEFAULT_BROKER_SOCKET,
  openMountNamespace,
  requestDirectoryMount,
  VarlinkError,
} from "../mod.ts";

const USAGE = `Usage: mount-dir [--socket S] [--ro] [--as UID:GID] [--mode MODE] [--pid PID] SRC DST

Ask the mount broker for an id-mapped mount of SRC, a directory of yours, and
attach it at DST, in this user and mount namespace; or, with --pid, at DST
inside the root of process PID (a running container), created if missing.

Options:
  --socket S      the broker's socket (default ${DEFAULT_BROKER_SOCKET})
  --ro            read-only
  --as UID:GID    your files show as UID:GID here (default 0:0)
  --mode MODE     auto, root, foreign or identity (default auto)
  --pid PID       attach in the mount namespace of PID, DST inside its root
`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        socket: { type: "string" },
        ro: { type: "boolean" },
        as: { type: "string" },
        mode: { type: "string" },
        pid: { type: "string" },
        help: { type: "boolean" },
      },
    });
  } catch (error) {
    console.error(`mount-dir: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const ids = values.as?.match(/^(\d+):(\d+)$/);
  const mode = values.mode ?? "auto";
  if (
    positionals.length !== 2 || (values.as !== undefined && !ids) ||
    !["auto", "root", "foreign", "identity"].includes(mode) ||
    (values.pid !== undefined && !/^\d+$/.test(values.pid))
  ) {
    console.error(USAGE);
    return 2;
  }
  const [src, dst] = positionals;
  try {
    using source = await requestDirectoryMount(src, {
      socket: values.socket,
      readOnly: values.ro,
      mode: mode as "auto",
      as: ids ? { uid: Number(ids[1]), gid: Number(ids[2]) } : undefined,
    });
    if (values.pid === undefined) {
      attachMountSource(source, dst);
    } else {
      await using ns = await openMountNamespace(`/proc/${values.pid}/ns/mnt`);
      await ns.attach(source, { root: "/", path: dst }, { create: true });
    }
  } catch (error) {
    // A refusal's reason stays in the broker's log: it is not sent to the caller.
    const why =
      error instanceof VarlinkError && error.error === "org.varlink.service.PermissionDenied"
        ? " (the broker's log says why)"
        : "";
    console.error(`mount-dir: ${(error as Error).message}${why}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
