/**
 * The Worker behind {@linkcode MountNamespace}: runc's mount source thread.
 *
 * Its thread leaves the process's shared filesystem context
 * (`unshare(CLONE_FS)`) and joins the mount namespace (`setns(CLONE_NEWNS)`),
 * then answers requests one at a time, each with synchronous libc calls on
 * that thread: open a mount source, attach one, unmount. It owns no fd:
 * every fd it is given belongs to the main thread, and every fd it opens is
 * handed to the main thread in the reply.
 *
 * @module
 */

import { AT_FDCWD, CLONE_FS, CLONE_NEWNS } from "../../ffi/constants.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { readlinkAt, setns, unshare } from "../../ffi/syscalls.ts";
import { attachOnThread } from "../attach.ts";
import { openSourceOnThread } from "../source.ts";
import { type ThreadContext, unmountOnThread } from "../unmount.ts";
import { type Calls, type Handlers, serve } from "./rpc.ts";

/**
 * The handlers of a mount namespace Worker, for `serve`.
 *
 * @returns A fresh set, not yet joined to any namespace.
 */
export function createHandlers(): Handlers {
  let thread: ThreadContext | undefined;
  const joined = (): ThreadContext => {
    if (thread === undefined) throw new Error("This worker has not joined a mount namespace");
    return thread;
  };
  return {
    join({ nsFd, procFd, path }): Calls["join"]["reply"] {
      if (thread !== undefined) throw new Error("This worker has joined a mount namespace already");
      unshare(CLONE_FS);
      try {
        setns(nsFd, CLONE_NEWNS, path);
      } catch (error) {
        if (!(error instanceof MountError) || error.code !== "EPERM") throw error;
        throw error.withHint(
          "(joining a mount namespace needs CAP_SYS_ADMIN in the user namespace that " +
            "owns it: run this inside that user namespace, in a mount namespace of its " +
            "own, such as under nsenter --target PID --user unshare --mount)",
        );
      }
      thread = { procFd };
      return { namespace: readlinkAt(procFd, "thread-self/ns/mnt") };
    },
    open({ mount, type }): Calls["open"]["reply"] {
      joined();
      return { fd: openSourceOnThread(mount, type) };
    },
    attach({ source, target, create }): Calls["attach"]["reply"] {
      attachOnThread(source, target, { create }, joined());
      return {};
    },
    unmount({ target, detach }): Calls["unmount"]["reply"] {
      unmountOnThread(target, { detach }, joined());
      return {};
    },
  };
}

if (import.meta.main) serve(readlinkAt(AT_FDCWD, "/proc/thread-self"), createHandlers());
