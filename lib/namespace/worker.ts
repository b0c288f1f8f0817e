/**
 * The Worker behind {@linkcode MountNamespace}: runc's mount source thread.
 *
 * Its thread leaves the process's shared filesystem context
 * (`unshare(CLONE_FS)`) and joins the mount namespace (`setns(CLONE_NEWNS)`),
 * then answers requests one at a time, each with synchronous libc calls on
 * that thread: open a mount source, attach one, unmount. It owns no fd:
 * every fd it is given belongs to the main thread, and every fd it opens is
 * handed to the main thread in the reply, or closed before it replies.
 *
 * An `InRoot` target's string root resolves inside the root the namespace
 * was opened with: of process PID for `/proc/PID/ns/mnt` (pinned by the
 * main thread), else the namespace's own.
 *
 * @module
 */

import { AT_FDCWD, CLONE_FS, CLONE_NEWNS, O_DIRECTORY, O_PATH } from "../../ffi/constants.ts";
import { MountError } from "../../ffi/mount_error.ts";
import { close, open, readlinkAt, setns, unshare } from "../../ffi/syscalls.ts";
import { OwnedFd } from "../fd.ts";
import type { Mount } from "../mount.ts";
import { inThisNamespace } from "../mountinfo.ts";
import { resolveInRoot } from "../in_root.ts";
import { targetName, type WireTarget } from "../target.ts";
import { attachOnThread } from "../attach.ts";
import { openSourceOnThread } from "../source.ts";
import { unmountOnThread } from "../unmount.ts";
import type { ThreadContext } from "../thread.ts";
import { type Calls, type Handlers, serve, WORKER_OP } from "./rpc.ts";

/**
 * The handlers of a mount namespace Worker, for `serve`.
 *
 * @returns A fresh set, not yet joined to any namespace.
 */
export function createHandlers(): Handlers {
  let thread: Joined | undefined;
  const joined = (): Joined => {
    if (thread === undefined) throw new Error("This worker has not joined a mount namespace");
    return thread;
  };
  return {
    join({ nsFd, procFd, rootFd, path }): Calls["join"]["reply"] {
      if (thread !== undefined) throw new Error("This worker has joined a mount namespace already");
      unshare(CLONE_FS);
      try {
        setns(nsFd, CLONE_NEWNS, path);
      } catch (error) {
        if (!(error instanceof MountError) || error.code !== "EPERM") throw error;
        throw error.withHint(
          "(joining a mount namespace needs CAP_SYS_ADMIN in the user namespace that " +
            "owns it: run this inside that user namespace, in a mount namespace of its " +
            "own, such as under nsenter --target PID --user --preserve-credentials " +
            "unshare --mount)",
        );
      }
      // setns made "/" the namespace's root: without a root given, targets resolve there.
      const root = rootFd ?? open("/", O_PATH | O_DIRECTORY);
      try {
        assertInNamespace(root, procFd, path);
      } catch (error) {
        if (rootFd === undefined) close(root);
        throw error;
      }
      thread = { procFd, rootFd: root };
      const namespace = readlinkAt(procFd, "thread-self/ns/mnt");
      return rootFd === undefined ? { namespace, rootFd: root } : { namespace };
    },
    open({ mount, type }): Calls["open"]["reply"] {
      const context = joined();
      try {
        return { fd: openSourceOnThread(mount, type) };
      } catch (error) {
        throw explainForeignSource(error, mount, context);
      }
    },
    attach({ source, target, create, owner }): Calls["attach"]["reply"] {
      const context = joined();
      inRoot(target, context, (resolved) => {
        attachOnThread(source, resolved, { create, owner }, context);
      });
      return {};
    },
    unmount({ target, detach }): Calls["unmount"]["reply"] {
      const context = joined();
      inRoot(target, context, (resolved) => unmountOnThread(resolved, { detach }, context));
      return {};
    },
  };
}

/** The thread, once joined: its /proc, and the root its targets resolve in. */
interface Joined extends ThreadContext {
  readonly procFd: number;
  readonly rootFd: number;
}

/**
 * Runs `fn` with a target whose string root is resolved inside the
 * namespace's root, never with plain open(): `"/"` is that root itself,
 * any other path is looked up in it (`RESOLVE_IN_ROOT`, no magic links).
 * A root given as an fd, and a plain string target, are left as they are.
 */
function inRoot(target: WireTarget, thread: Joined, fn: (target: WireTarget) => void): void {
  if (typeof target === "string" || typeof target.root !== "string") return fn(target);
  const name = target.root;
  let rootFd: number;
  try {
    rootFd = resolveInRoot(thread.rootFd, name, false);
  } catch (error) {
    if (!(error instanceof MountError)) throw error;
    throw new MountError(error.op, {
      errno: error.errno,
      target: targetName(target),
      hint: "(the root, resolved inside the namespace's root, with no magic link)",
      cause: error,
    });
  }
  try {
    fn({ root: { fd: rootFd, name }, path: target.path });
  } finally {
    close(rootFd);
  }
}

/**
 * Checks that a root is in the joined namespace: its mount is one of the
 * namespace's, so that a pinned `/proc/PID/root` is of a process there.
 */
function assertInNamespace(rootFd: number, procFd: number, path: string): void {
  if (inThisNamespace(rootFd, { procFd }) !== false) return;
  throw new MountError(WORKER_OP, {
    target: path,
    detail: "the root of its process is not in this mount namespace: it changed namespaces",
  });
}

/**
 * An EINVAL of cloning a source that is a mount of another namespace (a
 * path through `/proc/PID/root`, or a bind of one) says so: open_tree
 * clones only mounts of the namespace it runs in.
 */
function explainForeignSource(error: unknown, mount: Mount, thread: Joined): unknown {
  if (!(error instanceof MountError) || error.code !== "EINVAL") return error;
  if (error.op !== "open_tree(OPEN_TREE_CLONE)") return error;
  let foreign: boolean;
  try {
    using source = new OwnedFd(open(mount.source, O_PATH));
    foreign = inThisNamespace(source.fd, thread) === false;
  } catch {
    return error;
  }
  if (!foreign) return error;
  return error.withHint(
    "(the source is a mount of another mount namespace, reached through /proc/PID/root or " +
      "a bind of one: open_tree clones only mounts of the namespace it runs in; make the " +
      'source with sourceIn: "caller")',
  );
}

if (import.meta.main) serve(readlinkAt(AT_FDCWD, "/proc/thread-self"), createHandlers());
