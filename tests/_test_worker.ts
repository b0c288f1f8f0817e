/**
 * A mount namespace Worker for tests: the library's handlers, and requests
 * of the tests' own: `fault` (fail the next calls of some ops with some
 * errnos), `crash` (die of an uncaught error once it has answered),
 * `blockNextAttach` (block the next attach in a FIFO open until the test
 * opens the FIFO for writing).
 *
 * @module
 */

import { AT_FDCWD } from "../ffi/constants.ts";
import { readlinkAt } from "../ffi/syscalls.ts";
import { type Handlers, serve } from "../lib/namespace/rpc.ts";
import { createHandlers } from "../lib/namespace/worker.ts";
import { setFaultHook } from "./_faults.ts";

/** The tests' own requests. */
export interface TestCalls {
  /** Fail the next calls of these ops with these errnos. */
  fault: { faults: [string, number][] };
  /** Die of an uncaught error, once answered. */
  crash: Record<never, never>;
  /** Block the next attach in an open of this FIFO, before it does anything. */
  blockNextAttach: { fifo: string };
}

let blockOn: string | undefined;
const library = createHandlers();

const handlers = {
  ...library,
  attach(request: Parameters<Handlers["attach"]>[0]): ReturnType<Handlers["attach"]> {
    if (blockOn !== undefined) {
      const fifo = blockOn;
      blockOn = undefined;
      Deno.openSync(fifo, { read: true }).close();
    }
    return library.attach(request);
  },
  fault({ faults }: TestCalls["fault"]): Record<never, never> {
    const left = [...faults];
    setFaultHook(
      left.length === 0 ? undefined : (op) => {
        const i = left.findIndex(([name]) => name === op);
        if (i < 0) return undefined;
        return left.splice(i, 1)[0][1];
      },
    );
    return {};
  },
  crash(): Record<never, never> {
    // Right after the reply is posted, before the next request is read.
    queueMicrotask(() => {
      throw new Error("Crash requested by a test");
    });
    return {};
  },
  blockNextAttach({ fifo }: TestCalls["blockNextAttach"]): Record<never, never> {
    blockOn = fifo;
    return {};
  },
};

serve(readlinkAt(AT_FDCWD, "/proc/thread-self"), handlers as unknown as Handlers);
