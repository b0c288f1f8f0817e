/**
 * Waiting for an fd without blocking the event loop: poll(2) on another
 * thread, for the Unix sockets and the userns helpers' pipes and pidfds.
 *
 * @module
 */

import { pollWait } from "./libc.ts";

/** poll(2): readable. */
export const POLLIN = 0x1;
/** poll(2): writable. */
export const POLLOUT = 0x4;
/** poll(2): the other end hung up (returned, never asked for). */
export const POLLHUP = 0x10;

/**
 * Waits until `fd` is ready for `events`, or `timeout` ms pass, on another
 * thread: the event loop goes on meanwhile. Only the result is used (errno
 * is lost on that thread). To wake it early, shut the socket down, or end
 * the process at the other end of the pipe.
 *
 * @param fd The fd.
 * @param events `POLLIN`, `POLLOUT`, or both.
 * @param timeout Milliseconds (-1: no limit).
 * @returns The events that happened (with `POLLHUP`, `POLLERR`), 0 on timeout.
 */
export async function waitFor(fd: number, events: number, timeout: number): Promise<number> {
  const entry = new Int16Array(4);
  new Int32Array(entry.buffer)[0] = fd;
  entry[2] = events;
  const result = await pollWait(new Uint8Array(entry.buffer), 1n, Math.trunc(timeout));
  return result > 0 ? entry[3] & 0xffff : 0;
}
