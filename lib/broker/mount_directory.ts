/**
 * The mount broker's methods: systemd's `io.systemd.MountFileSystem.MountDirectory`,
 * and ours, `dev.mountfd.MountFileSystem.MountDirectory`, which also takes the
 * uid and gid the caller's files show as. The policy is here.
 *
 * @module
 */

import {
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_RDONLY,
  O_RDONLY,
} from "../../ffi/constants.ts";
import { open, readlinkAt } from "../../ffi/syscalls.ts";
import { AT_FDCWD } from "../../ffi/constants.ts";
import { OwnedFd } from "../fd.ts";
import type { IDMap } from "../mount.ts";
import { Handles } from "../userns/handles.ts";
import {
  denied,
  invalid,
  type VarlinkCall,
  type VarlinkReply,
  type VarlinkService,
} from "../varlink/service.ts";
import { VarlinkError } from "../varlink/error.ts";
import { WorkerPool } from "./pool.ts";
import { outsideOf } from "../userns/idmap.ts";
import { type CallerUserns, forgetUserns, inspectUserns, shiftInto } from "./userns.ts";
import { FOREIGN_BASE, FOREIGN_SIZE } from "./worker.ts";
import { type MountDirectoryMode, MOUNTFD_INTERFACE, SYSTEMD_INTERFACE } from "./interface.ts";

const SYSTEMD_IDL = `interface ${SYSTEMD_INTERFACE}
type MountMapMode (root, foreign, identity, auto)
method MountDirectory(directoryFileDescriptor: int, userNamespaceFileDescriptor: ?int, \
readOnly: ?bool, mode: ?MountMapMode, allowInteractiveAuthentication: ?bool) -> \
(mountFileDescriptor: int)
`;
const MOUNTFD_IDL = `# The caller's own files show as uid:gid inside its user namespace.
interface ${MOUNTFD_INTERFACE}
type MountMapMode (root, foreign, identity, auto)
method MountDirectory(directoryFileDescriptor: int, userNamespaceFileDescriptor: ?int, \
readOnly: ?bool, mode: ?MountMapMode, uid: ?int, gid: ?int) -> (mountFileDescriptor: int)
`;

const MODES = ["auto", "root", "foreign", "identity"];
const KNOWN = new Set([
  "directoryFileDescriptor",
  "userNamespaceFileDescriptor",
  "readOnly",
  "mode",
  "allowInteractiveAuthentication",
]);

/**
 * Options of {@linkcode addMountBroker}.
 *
 * @example
 * ```ts
 * import type { MountBrokerOptions } from "@mountfd/mountfd/broker";
 * const options: MountBrokerOptions = { maxJobs: 16 };
 * ```
 */
export interface MountBrokerOptions {
  /** The user namespace cache for the id mappings (default: a new one). */
  handles?: Handles;
  /** Filesystem jobs at once, each on a Worker (default 32). */
  maxJobs?: number;
  /**
   * Id-mapping user namespaces kept cached (default 256): past it the cache
   * is emptied, so that callers asking for ever new ids can't exhaust fds.
   */
  maxNamespaces?: number;
}

interface Request {
  dir: OwnedFd;
  userns: OwnedFd | undefined;
  readOnly: boolean;
  mode: MountDirectoryMode;
  uid: number;
  gid: number;
}

function fdParameter(call: VarlinkCall, value: unknown, name: string): OwnedFd {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) >= call.fds.length) {
    throw invalid(name, `not an index of the ${call.fds.length} fd(s) sent`);
  }
  return call.fds[value as number];
}

function parse(p: Record<string, unknown>, call: VarlinkCall, ours: boolean): Request {
  for (const key of Object.keys(p)) {
    if (!KNOWN.has(key) && !(ours && (key === "uid" || key === "gid"))) {
      throw invalid(key, "unknown parameter");
    }
  }
  const dir = fdParameter(call, p.directoryFileDescriptor, "directoryFileDescriptor");
  const userns = p.userNamespaceFileDescriptor == null
    ? undefined
    : fdParameter(call, p.userNamespaceFileDescriptor, "userNamespaceFileDescriptor");
  if (p.readOnly != null && typeof p.readOnly !== "boolean") throw invalid("readOnly");
  if (p.mode != null && !MODES.includes(p.mode as string)) throw invalid("mode");
  const id = (name: "uid" | "gid"): number => {
    const value = p[name] ?? 0;
    if (!Number.isInteger(value) || (value as number) < 0 || (value as number) >= 0xFFFFFFFF) {
      throw invalid(name, "not an id");
    }
    return value as number;
  };
  return {
    dir,
    userns,
    readOnly: p.readOnly === true,
    mode: (p.mode ?? "auto") as MountDirectoryMode,
    uid: ours ? id("uid") : 0,
    gid: ours ? id("gid") : 0,
  };
}

/** The broker: its Workers, its user namespaces, and its methods. */
class Broker {
  readonly #pool: WorkerPool;
  readonly #handles: Handles;
  readonly #ownHandles: boolean;
  readonly #maxNamespaces: number;
  readonly #self = new OwnedFd(open("/proc/self/ns/user", O_RDONLY));

  constructor(options: MountBrokerOptions) {
    this.#pool = new WorkerPool(options.maxJobs ?? 32);
    this.#ownHandles = options.handles === undefined;
    this.#handles = options.handles ?? new Handles();
    this.#maxNamespaces = options.maxNamespaces ?? 256;
  }

  close(): void {
    this.#pool.close();
    if (this.#ownHandles) this.#handles.release();
    this.#self.close();
    forgetUserns();
  }

  async mountDirectory(
    parameters: Record<string, unknown>,
    call: VarlinkCall,
    ours: boolean,
  ): Promise<VarlinkReply> {
    const request = parse(parameters, call, ours);
    const { peer, signal } = call;
    const root = peer.uid === 0;
    let path = "?";
    try {
      path = readlinkAt(AT_FDCWD, `/proc/self/fd/${request.dir.fd}`);
    } catch {
      // gone
    }
    // A name is the caller's to choose: no control character of it reaches the log.
    // deno-lint-ignore no-control-regex
    const shown = path.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
    call.log(`dir=${shown}`);
    const info = await this.#pool.run(
      { op: "inspect", dir: request.dir.fd, peerUid: peer.uid },
      signal,
    );
    if (!("directory" in info) || !info.directory) {
      throw new VarlinkError("io.systemd.System", { errno: 20, errnoName: "ENOTDIR" });
    }
    let mode = request.mode;
    if (mode === "auto") mode = info.ownership === "foreign" ? "foreign" : "root";
    call.log(
      `mode=${mode}${ours ? ` as=${request.uid}:${request.gid}` : ""}` +
        `${request.readOnly ? " ro" : ""}`,
    );
    let ns: CallerUserns | undefined;
    if (request.userns !== undefined) ns = await inspectUserns(request.userns, this.#self);
    if (ns !== undefined && !ns.own && !ns.child) {
      throw denied("the user namespace is not a child of the service's");
    }
    if (!root) {
      if (ns === undefined) throw denied("no user namespace: only root mounts into the service's");
      if (ns.own) throw denied("the user namespace is the service's own (the initial one)");
      if (ns.owner !== peer.uid) throw denied(`the user namespace belongs to uid ${ns.owner}`);
      if (mode === "foreign" && info.ownership !== "foreign") {
        throw denied(`the directory (owner ${info.uid}) is not foreign-owned under the caller's`);
      }
      if (mode !== "foreign" && info.ownership !== "peer") {
        throw denied(`the directory belongs to uid ${info.uid}, not to the caller`);
      }
    }
    const identity = [{ containerID: 0, hostID: 0, size: 4294967295 }];
    const uidMaps = ns?.mapping.uidMappings ?? identity;
    const gidMaps = ns?.mapping.gidMappings ?? identity;
    let mapping: { uidMappings: IDMap[]; gidMappings: IDMap[] } | undefined;
    if (mode === "root") {
      const uid = outsideOf(uidMaps, request.uid);
      const gid = outsideOf(gidMaps, request.gid);
      if (uid === undefined || gid === undefined) {
        throw denied(`the user namespace maps no ${request.uid}:${request.gid}`);
      }
      mapping = {
        uidMappings: [{ containerID: peer.uid, hostID: uid, size: 1 }],
        gidMappings: [{ containerID: peer.gid, hostID: gid, size: 1 }],
      };
    } else if (mode === "foreign") {
      mapping = {
        uidMappings: shiftInto(uidMaps, FOREIGN_BASE, FOREIGN_SIZE),
        gidMappings: shiftInto(gidMaps, FOREIGN_BASE, FOREIGN_SIZE),
      };
      if (mapping.uidMappings.length === 0 || mapping.gidMappings.length === 0) {
        throw denied("the user namespace maps none of the ids 0 to 65535");
      }
    }
    const attrSet = (request.readOnly ? MOUNT_ATTR_RDONLY : 0) |
      (root ? 0 : MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (this.#handles.size >= this.#maxNamespaces) this.#handles.release();
    using userns = mapping === undefined ? undefined : await this.#handles.get(mapping, { signal });
    const answer = await this.#pool.run({
      op: "clone",
      dir: request.dir.fd,
      pidfd: call.pidfd?.fd ?? -1,
      userns: userns?.fd ?? -1,
      attrSet,
      expectUid: info.uid,
    }, signal);
    const mount = new OwnedFd((answer as { fd: number }).fd);
    return { parameters: { mountFileDescriptor: 0 }, fds: [mount] };
  }
}

/**
 * Adds the broker's two interfaces to a Varlink service:
 * `io.systemd.MountFileSystem.MountDirectory` as systemd gives it, and
 * `dev.mountfd.MountFileSystem.MountDirectory`, which also takes the `uid`
 * and `gid` inside the caller's user namespace that its own files show as.
 *
 * @param service The service.
 * @param options The user namespace cache, and the jobs at once.
 * @returns What stops the broker's Workers and releases its user namespaces.
 *
 * @example Serve the broker
 * ```ts
 * import { addMountBroker, VarlinkService } from "@mountfd/mountfd/broker";
 * import { UnixListener } from "@mountfd/mountfd";
 *
 * const service = new VarlinkService({ product: "mount broker" });
 * using _broker = addMountBroker(service);
 * using listener = UnixListener.listen("/run/mountfd-broker.sock");
 * await service.serve(listener);
 * ```
 */
export function addMountBroker(
  service: VarlinkService,
  options: MountBrokerOptions = {},
): Disposable {
  const broker = new Broker(options);
  service.addInterface(SYSTEMD_INTERFACE, SYSTEMD_IDL);
  service.addInterface(MOUNTFD_INTERFACE, MOUNTFD_IDL);
  service.addMethod(
    `${SYSTEMD_INTERFACE}.MountDirectory`,
    (parameters, call) => broker.mountDirectory(parameters, call, false),
  );
  service.addMethod(
    `${MOUNTFD_INTERFACE}.MountDirectory`,
    (parameters, call) => broker.mountDirectory(parameters, call, true),
  );
  return { [Symbol.dispose]: () => broker.close() };
}
