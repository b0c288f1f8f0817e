/**
 * The caller's user namespace, as the broker checks it: its type, owner,
 * parent, and mappings, from the fd the caller sent (never a path).
 *
 * @module
 */

import { CLONE_NEWUSER } from "../../ffi/constants.ts";
import { statOwner } from "../../ffi/owner.ts";
import { nsIoctl } from "../../ffi/socket.ts";
import { namespaceType } from "../../ffi/syscalls.ts";
import { OwnedFd } from "../fd.ts";
import { getUserNamespaceMappings } from "../userns/idmap.ts";
import type { IDMap, Mapping } from "../mount.ts";
import { invalid } from "../varlink/service.ts";

const NS_GET_PARENT = 0xb702;
const NS_GET_OWNER_UID = 0xb704;

/** A caller's user namespace, checked. */
export interface CallerUserns {
  /** Its creator's uid, in the service's user namespace. */
  owner: number;
  /** Whether its parent is the service's own user namespace. */
  child: boolean;
  /** Whether it is the service's own user namespace. */
  own: boolean;
  /** Its mappings, relative to its parent. */
  mapping: Mapping;
}

const PARAMETER = "userNamespaceFileDescriptor";

function inode(fd: number): string {
  const { dev, ino } = statOwner(fd);
  return `${dev}:${ino}`;
}

/** Mappings of the namespaces seen, by inode, each with its fd held so the inode stays its own. */
const cache = new Map<string, { fd: OwnedFd; mapping: Mapping }>();
const CACHE_SIZE = 64;

/**
 * Checks that an fd is a user namespace and reads what the policy needs.
 *
 * @param fd The caller's fd.
 * @param self An fd of the service's own user namespace.
 * @returns Its owner, place and mappings.
 * @throws {VarlinkError} `InvalidParameter` when it is not a user namespace.
 */
export async function inspectUserns(fd: OwnedFd, self: OwnedFd): Promise<CallerUserns> {
  let type = -1;
  try {
    type = namespaceType(fd.fd, PARAMETER);
  } catch {
    // not a namespace
  }
  if (type !== CLONE_NEWUSER) throw invalid(PARAMETER, "not a user namespace");
  const owner = nsIoctl(fd.fd, NS_GET_OWNER_UID, "ioctl(NS_GET_OWNER_UID)").value;
  const key = inode(fd.fd);
  const own = key === inode(self.fd);
  let child = false;
  if (!own) {
    try {
      using parent = new OwnedFd(nsIoctl(fd.fd, NS_GET_PARENT, "ioctl(NS_GET_PARENT)").result);
      child = inode(parent.fd) === inode(self.fd);
    } catch {
      // EPERM: an ancestor of the service's own
    }
  }
  const hit = cache.get(key);
  if (hit !== undefined) return { owner, child, own, mapping: hit.mapping };
  const identity = [{ containerID: 0, hostID: 0, size: 4294967295 }];
  const mapping = own
    ? { uidMappings: identity, gidMappings: identity }
    : await getUserNamespaceMappings(`/proc/${Deno.pid}/fd/${fd.fd}`);
  if (cache.size >= CACHE_SIZE) {
    const [oldest, entry] = cache.entries().next().value!;
    entry.fd.close();
    cache.delete(oldest);
  }
  cache.set(key, { fd: fd.dup(), mapping });
  return { owner, child, own, mapping };
}

/** Forgets the cached mappings, closing their fds. */
export function forgetUserns(): void {
  for (const { fd } of cache.values()) fd.close();
  cache.clear();
}

/**
 * The id mapping of a mount that shows on-disk `from + n` as the outside id
 * of `n` in a namespace, for `n` in `[0, size)`: the ranges the namespace maps.
 *
 * @param maps The namespace's map.
 * @param from The first on-disk id.
 * @param size How many.
 * @returns The mount's mapping (`containerID` on disk, `hostID` seen).
 */
export function shiftInto(maps: IDMap[], from: number, size: number): IDMap[] {
  const out: IDMap[] = [];
  for (const { containerID, hostID, size: length } of maps) {
    const start = Math.max(0, containerID);
    const end = Math.min(size, containerID + length);
    if (start >= end) continue;
    out.push({
      containerID: from + start,
      hostID: hostID + start - containerID,
      size: end - start,
    });
  }
  return out;
}
