/**
 * Typed wrappers of the Unix-socket calls: stream sockets that carry fds
 * (`SCM_RIGHTS`), the peer's credentials (`SO_PEERCRED`, `SO_PEERPIDFD`),
 * and the nsfs ioctls that take an argument. Every socket is close-on-exec
 * and nonblocking; every fd received is close-on-exec (`MSG_CMSG_CLOEXEC`).
 * Each call reads errno at once, in its argument list, as `syscalls.ts`
 * does. A wait for readiness is `waitFor` in `poll.ts`.
 *
 * @module
 */

import { errnoView, libc, socketSymbols } from "./libc.ts";
import { MountError } from "./mount_error.ts";
import { close } from "./syscalls.ts";
import {
  AF_UNIX,
  EAGAIN,
  EINTR,
  ENOPROTOOPT,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SCM_RIGHTS,
  SO_PEERCRED,
  SO_PEERPIDFD,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "./constants.ts";

/** `sizeof(struct sockaddr_un.sun_path)`. */
const SUN_PATH = 108;

/** The most fds one message carries (the kernel's own limit, `SCM_MAX_FD`, is 253). */
export const MAX_FDS_PER_MESSAGE = 253;

const encoder = new TextEncoder();

function fail(op: string, code: number, path?: string): never {
  throw new MountError(op, { errno: code, source: path });
}

function pointer(buffer: Uint8Array | BigUint64Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

/** `struct sockaddr_un` for a path, and its length. */
function address(path: string): { bytes: Uint8Array<ArrayBuffer>; length: number } {
  if (path.includes("\0")) {
    throw new TypeError(`Invalid socket path: contains a NUL byte: ${JSON.stringify(path)}`);
  }
  const name = encoder.encode(path);
  if (name.length === 0 || name.length >= SUN_PATH) {
    throw new TypeError(
      `Invalid socket path: expected 1 to ${SUN_PATH - 1} bytes, got ${name.length}: ${path}`,
    );
  }
  const bytes = new Uint8Array(2 + SUN_PATH);
  new DataView(bytes.buffer).setUint16(0, AF_UNIX, true);
  bytes.set(name, 2);
  return { bytes, length: 2 + name.length + 1 };
}

/**
 * A new `AF_UNIX` stream socket, nonblocking and close-on-exec.
 *
 * @returns The socket fd, which the caller owns.
 * @throws {MountError} With op `"socket"`.
 */
export function unixSocket(): number {
  const s = socketSymbols("socket");
  const type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const fd = s.socket(AF_UNIX, type, 0);
  return fd >= 0 ? fd : fail("socket", errnoView[0]);
}

/**
 * A connected pair of `AF_UNIX` stream sockets, nonblocking and close-on-exec.
 *
 * @returns The two fds, which the caller owns.
 * @throws {MountError} With op `"socketpair"`.
 */
export function unixSocketPair(): [number, number] {
  const s = socketSymbols("socketpair");
  const fds = new Int32Array(2);
  const type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const result = s.socketpair(AF_UNIX, type, 0, new Uint8Array(fds.buffer));
  if (result < 0) fail("socketpair", errnoView[0]);
  return [fds[0], fds[1]];
}

/**
 * bind(2) then listen(2) of a socket at a path.
 *
 * @param fd A socket from {@linkcode unixSocket}.
 * @param path The socket's path.
 * @param backlog The queue of connections not yet accepted.
 * @throws {MountError} With op `"bind"` or `"listen"`.
 */
export function bindAndListen(fd: number, path: string, backlog: number): void {
  const s = socketSymbols("bind");
  const { bytes, length } = address(path);
  if (s.bind(fd, bytes, length) < 0) fail("bind", errnoView[0], path);
  if (s.listen(fd, backlog) < 0) fail("listen", errnoView[0], path);
}

/**
 * connect(2) to a socket path. On a nonblocking socket a Unix connect either
 * completes or fails at once: EAGAIN means the listener's queue is full.
 *
 * @param fd A socket from {@linkcode unixSocket}.
 * @param path The listening socket's path.
 * @throws {MountError} With op `"connect"`.
 */
export function connectTo(fd: number, path: string): void {
  const s = socketSymbols("connect");
  const { bytes, length } = address(path);
  if (s.connect(fd, bytes, length) < 0) fail("connect", errnoView[0], path);
}

/**
 * accept4(2) with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
 *
 * @param fd A listening socket.
 * @returns The new connection's fd, or -1 when none is waiting.
 * @throws {MountError} With op `"accept4"` for any other failure.
 */
export function acceptOne(fd: number): number {
  const s = socketSymbols("accept4");
  const result = s.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (result >= 0) return result;
  const code = errnoView[0];
  return code === EAGAIN || code === EINTR ? -1 : fail("accept4", code);
}

/**
 * Makes an inherited socket nonblocking (`O_NONBLOCK`) and close-on-exec
 * (`FD_CLOEXEC`), as every socket of this module is: a socket-activated
 * service's listener, for one, comes with neither.
 *
 * @param fd The fd.
 * @throws {MountError} With op `"fcntl"`.
 */
export function adoptSocket(fd: number): void {
  const c = libc("fcntl");
  const flags = c.fcntl(fd, 3, 0); // F_GETFL
  if (flags < 0) fail("fcntl", errnoView[0]);
  if ((flags & SOCK_NONBLOCK) === 0 && c.fcntl(fd, 4, flags | SOCK_NONBLOCK) < 0) { // F_SETFL
    fail("fcntl", errnoView[0]);
  }
  if (c.fcntl(fd, 2, 1) < 0) fail("fcntl", errnoView[0]); // F_SETFD, FD_CLOEXEC
}

/**
 * shutdown(2) of both directions: wakes a `poll` of the socket on another
 * thread. Never throws.
 *
 * @param fd A socket.
 */
export function shutdownBoth(fd: number): void {
  socketSymbols("shutdown").shutdown(fd, 2);
}

/** A `struct msghdr` with one iovec and a control buffer, kept alive together. */
class Header {
  readonly bytes = new Uint8Array(56);
  readonly iov = new BigUint64Array(2);
  readonly words = new BigUint64Array(this.bytes.buffer);
  readonly view = new DataView(this.bytes.buffer);

  constructor(data: Uint8Array, control: Uint8Array) {
    this.iov[0] = data.length > 0 ? pointer(data) : 0n;
    this.iov[1] = BigInt(data.length);
    this.words[2] = pointer(this.iov); // msg_iov
    this.words[3] = 1n; // msg_iovlen
    this.words[4] = control.length > 0 ? pointer(control) : 0n; // msg_control
    this.words[5] = BigInt(control.length); // msg_controllen
  }

  get flags(): number {
    return this.view.getInt32(48, true);
  }

  get controlLength(): number {
    return Number(this.words[5]);
  }
}

/** `CMSG_SPACE(n)`: a header of 16 bytes, then the data padded to 8. */
function cmsgSpace(n: number): number {
  return 16 + Math.ceil(n / 8) * 8;
}

/**
 * sendmsg(2) of bytes, with fds in an `SCM_RIGHTS` message when there are
 * any; `MSG_DONTWAIT | MSG_NOSIGNAL`.
 *
 * @param fd A connected socket.
 * @param data The bytes (some may be left unsent; the fds go with the first).
 * @param fds The fds to send with them (they stay open here).
 * @returns The bytes sent, or -1 when the socket's buffer is full.
 * @throws {MountError} With op `"sendmsg"`.
 */
export function sendBytes(fd: number, data: Uint8Array, fds: readonly number[] = []): number {
  if (fds.length > MAX_FDS_PER_MESSAGE) {
    throw new RangeError(
      `Too many fds for one message: ${fds.length}, at most ${MAX_FDS_PER_MESSAGE}`,
    );
  }
  const control = new Uint8Array(fds.length > 0 ? cmsgSpace(4 * fds.length) : 0);
  if (fds.length > 0) {
    const view = new DataView(control.buffer);
    view.setBigUint64(0, BigInt(16 + 4 * fds.length), true);
    view.setInt32(8, SOL_SOCKET, true);
    view.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((n, i) => view.setInt32(16 + 4 * i, n, true));
  }
  const header = new Header(data, control);
  const s = socketSymbols("sendmsg");
  const sent = Number(s.sendmsg(fd, header.bytes, MSG_DONTWAIT | MSG_NOSIGNAL));
  if (sent >= 0) return sent;
  const code = errnoView[0];
  return code === EAGAIN || code === EINTR ? -1 : fail("sendmsg", code);
}

/** What {@linkcode receiveBytes} got. */
export interface Received {
  /** Bytes read into the buffer: 0 at end of stream, -1 when none is waiting. */
  length: number;
  /** The fds that came with them, close-on-exec; the caller owns them. */
  fds: number[];
  /** The message carried more fds than `maxFds`: the kernel closed the rest. */
  truncated: boolean;
}

/**
 * recvmsg(2) with `MSG_DONTWAIT | MSG_CMSG_CLOEXEC`, room for `maxFds` fds.
 * Every fd received is returned, even when the call reports truncation, so
 * that the caller closes them; nothing received is left open here.
 *
 * @param fd A connected socket.
 * @param buffer Where the bytes go.
 * @param maxFds The most fds to take; a message with more is `truncated`.
 * @returns The length, the fds and whether they were truncated.
 * @throws {MountError} With op `"recvmsg"`.
 */
export function receiveBytes(fd: number, buffer: Uint8Array, maxFds: number): Received {
  const control = new Uint8Array(cmsgSpace(4 * Math.max(1, maxFds)));
  const header = new Header(buffer, control);
  const s = socketSymbols("recvmsg");
  const flags = MSG_DONTWAIT | MSG_CMSG_CLOEXEC;
  const length = Number(s.recvmsg(fd, header.bytes, flags));
  if (length < 0) {
    const code = errnoView[0];
    return code === EAGAIN || code === EINTR
      ? { length: -1, fds: [], truncated: false }
      : fail("recvmsg", code);
  }
  const fds: number[] = [];
  const view = new DataView(control.buffer);
  const end = Math.min(header.controlLength, control.length);
  let truncated = (header.flags & MSG_CTRUNC) !== 0;
  for (let at = 0; at + 16 <= end;) {
    const size = Number(view.getBigUint64(at, true));
    if (size < 16) break;
    const level = view.getInt32(at + 8, true);
    const type = view.getInt32(at + 12, true);
    const last = Math.min(at + size, end);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let i = at + 16; i + 4 <= last; i += 4) fds.push(view.getInt32(i, true));
    } else {
      truncated = true; // a control message of another kind: refused too
    }
    at += Math.ceil(size / 8) * 8;
  }
  return { length, fds, truncated };
}

/**
 * The credentials of a socket's peer, as they were at connect(2).
 *
 * @example Who is on the other end
 * ```ts
 * import type { PeerCredentials, UnixConnection } from "@mountfd/mountfd";
 *
 * declare const connection: UnixConnection;
 * const { pid, uid }: PeerCredentials = connection.peer();
 * console.log(`pid ${pid}, uid ${uid}`);
 * ```
 */
export interface PeerCredentials {
  /** The peer's pid, in this process's pid namespace (0 if it has none here). */
  pid: number;
  /** Its effective uid, in this process's user namespace. */
  uid: number;
  /** Its effective gid, in this process's user namespace. */
  gid: number;
}

/**
 * getsockopt(`SO_PEERCRED`).
 *
 * @param fd A connected socket.
 * @returns The peer's pid, uid and gid.
 * @throws {MountError} With op `"getsockopt(SO_PEERCRED)"`.
 */
export function peerCredentials(fd: number): PeerCredentials {
  const s = socketSymbols("getsockopt");
  const value = new Uint32Array(3);
  const length = Uint32Array.of(12);
  const bytes = new Uint8Array(value.buffer);
  const op = "getsockopt(SO_PEERCRED)";
  if (s.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, bytes, new Uint8Array(length.buffer)) < 0) {
    fail(op, errnoView[0]);
  }
  return { pid: value[0], uid: value[1], gid: value[2] };
}

/**
 * getsockopt(`SO_PEERPIDFD`) (Linux 6.5): a pidfd of the peer, which names it
 * even after its pid is reused.
 *
 * @param fd A connected socket.
 * @returns The pidfd (close-on-exec), or -1 on a kernel without it.
 * @throws {MountError} With op `"getsockopt(SO_PEERPIDFD)"` for another failure.
 */
export function peerPidfd(fd: number): number {
  const s = socketSymbols("getsockopt");
  const value = new Int32Array(1);
  const length = Uint32Array.of(4);
  const bytes = new Uint8Array(value.buffer);
  const result = s.getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, bytes, new Uint8Array(length.buffer));
  if (result >= 0) return value[0];
  const code = errnoView[0];
  return code === ENOPROTOOPT ? -1 : fail("getsockopt(SO_PEERPIDFD)", code);
}

/**
 * An nsfs ioctl that fills a `u32` (`NS_GET_OWNER_UID`) or returns an fd
 * (`NS_GET_PARENT`, `NS_GET_USERNS`).
 *
 * @param fd An nsfs fd.
 * @param request The ioctl request.
 * @param op Its name, for the error.
 * @returns The call's result (an fd for the fd-returning requests) and the u32.
 * @throws {MountError} With `op`.
 */
export function nsIoctl(
  fd: number,
  request: number,
  op: string,
): { result: number; value: number } {
  const s = socketSymbols(op);
  const value = new Uint32Array(1);
  const result = s.ioctl_arg(fd, BigInt(request), new Uint8Array(value.buffer));
  return result >= 0 ? { result, value: value[0] } : fail(op, errnoView[0]);
}

/**
 * Closes every fd of a list, ignoring errors.
 *
 * @param fds The fds.
 */
export function closeAll(fds: readonly number[]): void {
  for (const fd of fds) close(fd);
}
