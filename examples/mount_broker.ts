/**
 * mount-broker: the mount broker as a service. It answers
 * `io.systemd.MountFileSystem.MountDirectory` as systemd-mountfsd does, and
 * `dev.mountfd.MountFileSystem.MountDirectory` (the caller's files as any
 * uid:gid), on a Unix socket, for unprivileged users' own directories.
 *
 *     deno task mount-broker [--socket PATH]
 *
 * The socket is `/run/mountfd/broker.sock` by default, mode 0666, as
 * systemd's; a stale socket there is replaced. Started by systemd socket
 * activation (`LISTEN_FDS=1`, `LISTEN_PID` this process), it serves the
 * listening socket it inherits, `--listen-fd N`: Deno's runtime takes fd 3
 * for itself before this code runs, so systemd's fd 3 is moved first
 * (`sh -c 'exec 9<&3 3<&-; exec deno run ... --listen-fd 9'`). One line per
 * request on stderr. It stops on SIGINT or SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_BROKER_SOCKET, UnixListener } from "../mod.ts";
import { addMountBroker, VarlinkService, type VarlinkServiceOptions } from "../broker.ts";

const USAGE = `Usage: mount-broker [--socket PATH | --listen-fd N]

Serve id-mapped mounts of their own directories to unprivileged users, over
Varlink (io.systemd.MountFileSystem.MountDirectory and
dev.mountfd.MountFileSystem.MountDirectory).

Options:
  --socket PATH   listen there (default ${DEFAULT_BROKER_SOCKET}, mode 0666)
  --listen-fd N   serve a listening socket inherited as fd N (socket activation;
                  Deno takes fd 3 itself, so move systemd's: sh -c 'exec 9<&3 3<&-;
                  exec deno run ... --listen-fd 9')
  --help          show this
`;

/** A bound taken from the environment, for tests and tuning. */
function bound(name: string): number | undefined {
  const value = Deno.env.get(`MOUNTFD_BROKER_${name}`);
  return value === undefined ? undefined : Number(value);
}

function listener(socket: string | undefined, listenFd: string | undefined): UnixListener {
  const activated = Number(Deno.env.get("LISTEN_FDS") ?? 0) >= 1 &&
    Deno.env.get("LISTEN_PID") === String(Deno.pid);
  if (listenFd !== undefined || (socket === undefined && activated)) {
    Deno.env.delete("LISTEN_FDS");
    Deno.env.delete("LISTEN_PID");
    const fd = Number(listenFd ?? 3);
    try {
      return new UnixListener(fd);
    } catch (error) {
      throw new Error(
        `Cannot serve fd ${listenFd ?? 3}: ${(error as Error).message}` +
          (listenFd === undefined
            ? " (Deno's runtime takes fd 3 before this code runs: move the socket with " +
              "`sh -c 'exec 9<&3 3<&-; exec deno run ... --listen-fd 9'`)"
            : ""),
      );
    }
  }
  const path = socket ?? DEFAULT_BROKER_SOCKET;
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    if (Deno.lstatSync(path).isSocket) Deno.removeSync(path);
  } catch {
    // none there
  }
  const listening = UnixListener.listen(path);
  Deno.chmodSync(path, 0o666);
  return listening;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      socket: { type: "string" },
      "listen-fd": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const options: VarlinkServiceOptions = {
    product: "mountfd mount broker",
    maxConnections: bound("MAX_CONNECTIONS"),
    idleTimeout: bound("IDLE_TIMEOUT"),
    callTimeout: bound("CALL_TIMEOUT"),
    maxMessageBytes: bound("MAX_MESSAGE_BYTES"),
    maxFds: bound("MAX_FDS"),
  };
  const service = new VarlinkService(
    Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  );
  using _broker = addMountBroker(service, { maxNamespaces: bound("MAX_NAMESPACES") });
  const listening = listener(values.socket, values["listen-fd"]);
  const stop = () => service.stop();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  console.error(
    `mount-broker: listening on ${listening.path ?? `fd ${listening.fd} (socket activation)`}, ` +
      `pid ${Deno.pid}`,
  );
  try {
    await service.serve(listening);
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    if (listening.path !== undefined) {
      try {
        Deno.removeSync(listening.path);
      } catch {
        // gone
      }
    }
  }
  console.error("mount-broker: stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main());
