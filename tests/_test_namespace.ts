/**
 * A mount namespace whose Worker also answers the tests' own requests (see
 * `_test_worker.ts`), and a way to send them.
 *
 * @module
 */

import { openNamespace } from "../lib/namespace/open.ts";
import { WorkerMountNamespace } from "../lib/namespace/worker_namespace.ts";

const TEST_WORKER = new URL("./_test_worker.ts", import.meta.url);

/** A namespace of the test Worker, with {@linkcode TestNamespace.send}. */
export class TestNamespace extends WorkerMountNamespace {
  /**
   * Sends a request of the tests' own, in call order.
   *
   * @param kind The kind, such as `"fault"`.
   * @param body The request.
   * @returns The reply.
   */
  send(kind: string, body: unknown): Promise<unknown> {
    return this.request(kind, body);
  }
}

/**
 * Opens a namespace with the test Worker.
 *
 * @param nsPath The namespace file.
 * @param options Its close timeout.
 * @returns The namespace.
 */
export function openTestNamespace(
  nsPath: string,
  options: { closeTimeout?: number } = {},
): Promise<TestNamespace> {
  return openNamespace<TestNamespace>(nsPath, options, TEST_WORKER, TestNamespace);
}
