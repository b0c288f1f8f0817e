/**
 * The broker's Varlink interfaces, by name, and the modes of MountDirectory:
 * what a client and the service share.
 *
 * @module
 */

/**
 * The mapping modes of MountDirectory: `root` (the caller's ids on disk show
 * as 0, or as the ids asked for), `foreign` (on-disk `0x7FFE0000 + n` shows
 * as `n`), `identity` (no mapping), `auto` (`foreign` for a foreign-owned
 * directory, else `root`).
 *
 * @example
 * ```ts
 * import type { MountDirectoryMode } from "@mountfd/mountfd";
 * const mode: MountDirectoryMode = "foreign";
 * ```
 */
export type MountDirectoryMode = "auto" | "root" | "foreign" | "identity";

/**
 * systemd's interface, which the broker answers as systemd-mountfsd does.
 *
 * @example
 * ```ts
 * import { SYSTEMD_INTERFACE } from "@mountfd/mountfd";
 * console.log(`${SYSTEMD_INTERFACE}.MountDirectory`);
 * ```
 */
export const SYSTEMD_INTERFACE = "io.systemd.MountFileSystem";
/**
 * Ours, beside it: `MountDirectory` with `uid` and `gid`, the ids inside the
 * caller's user namespace that its own files show as.
 *
 * @example
 * ```ts
 * import { MOUNTFD_INTERFACE } from "@mountfd/mountfd";
 * console.log(`${MOUNTFD_INTERFACE}.MountDirectory`); // dev.mountfd.MountFileSystem.MountDirectory
 * ```
 */
export const MOUNTFD_INTERFACE = "dev.mountfd.MountFileSystem";
