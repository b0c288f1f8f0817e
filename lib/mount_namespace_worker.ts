/**
 * The Worker behind {@linkcode MountNamespace}: runc's mount source thread.
 *
 * Its thread leaves the process's shared filesystem context
 * (`unshare(CLONE_FS)`) and joins the mount namespace (`setns(CLONE_NEWNS)`),
 * then answers requests one at a time, each with synchronous libc calls on
 * that thread: open a mount source, attach one. It owns no fd: every fd it
 * is given belongs to the main thread, and every fd it opens is handed to the
 * main thread in the answer, in the same turn.
 *
 * @module
 */

import { AT_FDCWD, CLONE_FS, CLONE_NEWNS } from "../ffi/constants.ts";
import { MountError } from "../ffi/mount_error.ts";
import { replaceSymbols, type Symbols } from "../ffi/libc.ts";
import { readlinkAt, setns, unshare } from "../ffi/syscalls.ts";
import { attachFd, useProcDir } from "./attach.ts";
import type { Mount } from "./mount.ts";
import { type MountSourceType, openSourceFd } from "./mount_fd.ts";
import { completeMount } from "./mount_into.ts";

/** A request from the main thread. */
export type WorkerRequest =
  | { kind: "hello" }
  | { kind: "join"; nsFd: number; procFd: number; path: string }
  | { kind: "open"; mount: Mount }
  | {
    kind: "attach";
    type: MountSourceType;
    fd: number;
    mount: Mount;
    target: string;
    complete: boolean;
  }
  // Test seam: fail the next call of each libc symbol (a mount(2) whose flags
  // include these, if given) with this errno.
  | { kind: "fault"; faults: [symbol: string, errno: number, mountFlags?: number][] }
  // Test seam: die of an uncaught error.
  | { kind: "crash" };

/** An error, as it crosses to the main thread. */
export interface WorkerError {
  /** `"MountError"`, `"TypeError"`, or another error name. */
  name: string;
  /** The message. */
  message: string;
  /** A MountError's op. */
  op?: string;
  /** A MountError's errno. */
  errno?: number;
  /** A MountError's source. */
  source?: string;
  /** A MountError's target. */
  target?: string;
}

/** The answer to a request. */
export type WorkerReply =
  | {
    id: number;
    ok: true;
    fd?: number;
    type?: MountSourceType;
    namespace?: string;
    thread?: string;
  }
  | { id: number; ok: false; error: WorkerError };

interface WorkerScope {
  onmessage: ((event: MessageEvent<WorkerRequest & { id: number }>) => void) | null;
  postMessage(message: WorkerReply): void;
}

const scope = globalThis as unknown as WorkerScope;
let joined = false;
/** Test seam: the faulting symbol table a "fault" request installed. */
let faulting: Disposable | undefined;

function handle(request: WorkerRequest): Omit<WorkerReply & { ok: true }, "id" | "ok"> {
  switch (request.kind) {
    case "hello":
      // "PID/task/TID": the main thread waits for it to end on close.
      return { thread: readlinkAt(AT_FDCWD, "/proc/thread-self") };
    case "join": {
      if (joined) throw new Error("This worker has joined a mount namespace already");
      unshare(CLONE_FS);
      try {
        setns(request.nsFd, CLONE_NEWNS, request.path);
      } catch (error) {
        if (!(error instanceof MountError) || error.code !== "EPERM") throw error;
        throw new MountError(error.op, {
          errno: error.errno,
          target: request.path,
          hint: "(joining a mount namespace needs CAP_SYS_ADMIN in the user namespace " +
            "that owns it)",
        });
      }
      joined = true;
      useProcDir(request.procFd);
      return { namespace: readlinkAt(request.procFd, "thread-self/ns/mnt") };
    }
    case "open": {
      assertJoined();
      const { type, fd } = openSourceFd(request.mount);
      return { type, fd: fd.fd };
    }
    case "attach": {
      assertJoined();
      const { type, fd, mount, target } = request;
      if (request.complete) completeMount(type, fd, mount, target);
      else attachFd(type, fd, mount, target);
      return {};
    }
    case "fault": {
      const faults = [...request.faults];
      faulting?.[Symbol.dispose]();
      faulting = faults.length === 0 ? undefined : replaceSymbols((loaded) => {
        const location = loaded.__errno_location();
        const errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(location!, 4));
        const table: Record<string, unknown> = { ...loaded };
        for (const [symbol] of faults) {
          const real = loaded[symbol as keyof Symbols] as (...args: unknown[]) => unknown;
          table[symbol] = (...args: unknown[]) => {
            const i = faults.findIndex(([name, , flags = 0]) =>
              name === symbol && (Number(args[3]) & flags) === flags
            );
            if (i < 0) return real(...args);
            errnoView[0] = faults.splice(i, 1)[0][1];
            return -1;
          };
        }
        return table as Symbols;
      });
      return {};
    }
    case "crash":
      throw new WorkerCrash();
  }
}

class WorkerCrash extends Error {
  constructor() {
    super("Crash requested by a test");
    this.name = "WorkerCrash";
  }
}

function assertJoined(): void {
  if (!joined) throw new Error("This worker has not joined a mount namespace");
}

function serialize(error: unknown): WorkerError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const { name, message } = error;
  if (!(error instanceof MountError)) return { name, message };
  const { op, errno, source, target } = error;
  return { name, message, op, errno, source, target };
}

scope.onmessage = (event) => {
  const { id, ...request } = event.data;
  let reply: WorkerReply;
  try {
    reply = { id, ok: true, ...handle(request as WorkerRequest) };
  } catch (error) {
    if (error instanceof WorkerCrash) throw error;
    reply = { id, ok: false, error: serialize(error) };
  }
  scope.postMessage(reply);
};
