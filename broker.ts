/**
 * The mount broker's service, apart from `mod.ts` so that a program that
 * only mounts does not load it: {@linkcode addMountBroker} serves
 * `io.systemd.MountFileSystem.MountDirectory` (and ours,
 * `dev.mountfd.MountFileSystem.MountDirectory`) on a
 * {@linkcode VarlinkService}. A client asks with `requestDirectoryMount`,
 * from `mod.ts`. `deno task mount-broker` runs it.
 *
 * @example Serve the broker on a socket of one's own (as root)
 * ```ts
 * import { addMountBroker, VarlinkService } from "@mountfd/mountfd/broker";
 * import { UnixListener } from "@mountfd/mountfd";
 *
 * const service = new VarlinkService({ product: "mount broker" });
 * using _broker = addMountBroker(service);
 * using listener = UnixListener.listen("/run/mountfd/broker.sock");
 * await service.serve(listener);
 * ```
 *
 * @module
 */

export { addMountBroker, type MountBrokerOptions } from "./lib/broker/mount_directory.ts";
export {
  type VarlinkCall,
  type VarlinkMethod,
  type VarlinkReply,
  VarlinkService,
  type VarlinkServiceOptions,
} from "./lib/varlink/service.ts";
