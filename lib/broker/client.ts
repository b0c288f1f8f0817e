/**
 * The mount broker's client: asks for an id-mapped mount of a directory, and
 * gets a {@linkcode MountSource} to attach.
 *
 * @module
 */

import { MS_BIND, MS_RDONLY, O_DIRECTORY, O_RDONLY } from "../../ffi/constants.ts";
import { open } from "../../ffi/syscalls.ts";
import { OwnedFd } from "../fd.ts";
import { MountSource } from "../source.ts";
import { VarlinkClient } from "../varlink/client.ts";
import { type MountDirectoryMode, MOUNTFD_INTERFACE, SYSTEMD_INTERFACE } from "./interface.ts";

/**
 * Where the broker listens unless told otherwise.
 *
 * @example
 * ```ts
 * import { DEFAULT_BROKER_SOCKET } from "@mountfd/mountfd";
 * console.log(DEFAULT_BROKER_SOCKET); // /run/mountfd/broker.sock
 * ```
 */
export const DEFAULT_BROKER_SOCKET = "/run/mountfd/broker.sock";

/**
 * Options of {@linkcode requestDirectoryMount}.
 *
 * @example Read-only, the caller's files as 994:994
 * ```ts
 * import type { DirectoryMountOptions } from "@mountfd/mountfd";
 * const options: DirectoryMountOptions = { readOnly: true, as: { uid: 994, gid: 994 } };
 * ```
 */
export interface DirectoryMountOptions {
  /** The broker's socket (default `/run/mountfd/broker.sock`). */
  socket?: string;
  /**
   * The user namespace the mount is for: a path, or an fd (default: the
   * caller's own, `/proc/self/ns/user`). `null` asks for none (root only).
   */
  userns?: string | OwnedFd | null;
  /** Make the mount read-only. */
  readOnly?: boolean;
  /** The mapping (default `"auto"`). */
  mode?: MountDirectoryMode;
  /**
   * The ids the caller's own files show as inside the user namespace, with
   * our interface; without it, systemd's (they show as 0:0).
   */
  as?: { uid: number; gid: number };
  /** Aborts the request. */
  signal?: AbortSignal;
  /** Ms to wait for the broker (default 30000). */
  timeout?: number;
}

/**
 * Asks the mount broker for an id-mapped mount of a directory, and returns it
 * as a mount source for {@linkcode attachMountSource} or
 * `MountNamespace.attach`. The directory is opened here, by the caller, and
 * sent as an fd: the broker resolves no path.
 *
 * @param directory The directory: a path, or an open fd of it.
 * @param options The socket, the user namespace, read-only, the mode, the ids.
 * @returns The mount source (type `"open_tree"`), which the caller closes.
 * @throws {VarlinkError} A refusal by name: `org.varlink.service.PermissionDenied`,
 * `org.varlink.service.InvalidParameter`, `io.systemd.System`.
 * @throws {MountError} When the broker can't be reached (op `"connect"`).
 *
 * @example Attach the caller's directory, its files as root, in its own namespaces
 * ```ts
 * import { attachMountSource, requestDirectoryMount } from "@mountfd/mountfd";
 *
 * using source = await requestDirectoryMount("/home/alice/data");
 * attachMountSource(source, "/mnt/data");
 * ```
 */
export async function requestDirectoryMount(
  directory: string | OwnedFd,
  options: DirectoryMountOptions = {},
): Promise<MountSource> {
  const owned: OwnedFd[] = [];
  const fdOf = (value: string | OwnedFd, flags: number): OwnedFd => {
    if (typeof value !== "string") return value;
    const fd = new OwnedFd(open(value, flags));
    owned.push(fd);
    return fd;
  };
  try {
    const dir = fdOf(directory, O_RDONLY | O_DIRECTORY);
    const userns = options.userns === null
      ? undefined
      : fdOf(options.userns ?? "/proc/self/ns/user", O_RDONLY);
    const parameters: Record<string, unknown> = {
      directoryFileDescriptor: 0,
      userNamespaceFileDescriptor: userns === undefined ? null : 1,
      readOnly: options.readOnly ?? false,
      mode: options.mode ?? "auto",
    };
    const fds = userns === undefined ? [dir] : [dir, userns];
    let method = `${SYSTEMD_INTERFACE}.MountDirectory`;
    if (options.as !== undefined) {
      method = `${MOUNTFD_INTERFACE}.MountDirectory`;
      parameters.uid = options.as.uid;
      parameters.gid = options.as.gid;
    }
    using client = await VarlinkClient.connect(options.socket ?? DEFAULT_BROKER_SOCKET, {
      signal: options.signal,
    });
    const reply = await client.call(method, parameters, {
      fds,
      signal: options.signal,
      timeout: options.timeout,
    });
    const index = reply.parameters.mountFileDescriptor;
    const mountFd = typeof index === "number" ? reply.fds[index] : undefined;
    for (const fd of reply.fds) if (fd !== mountFd) fd.close();
    if (mountFd === undefined) throw new Error("The broker's reply carries no mount fd");
    using received = mountFd;
    return new MountSource("open_tree", received.dup().fd, {
      source: typeof directory === "string" ? directory : `fd ${directory.fd}`,
      destination: "",
      flags: MS_BIND | (options.readOnly ? MS_RDONLY : 0),
    });
  } finally {
    for (const fd of owned) fd.close();
  }
}
