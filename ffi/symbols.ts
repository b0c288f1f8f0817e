/**
 * The libc symbol table: every C function this module calls, with its C
 * signature, in one `as const` table. `libc.ts` binds them, on first use.
 *
 * @module
 */

/**
 * Every libc symbol this module calls, with its C signature. No errno-setting
 * symbol is `nonblocking`: errno is read on the thread that made the call.
 */
export const SYMBOLS = {
  // int open(const char *path, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int openat(int dirfd, const char *path, int flags, mode_t mode);
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int fcntl(int fd, int cmd, int arg);
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request);
  ioctl: { parameters: ["i32", "u64"], result: "i32" },
  // int umount2(const char *target, int flags);
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // int unshare(int flags);
  unshare: { parameters: ["i32"], result: "i32" },
  // int setns(int fd, int nstype);
  setns: { parameters: ["i32", "i32"], result: "i32" },
  // int chdir(const char *path);
  chdir: { parameters: ["buffer"], result: "i32" },
  // int fchdir(int fd);
  fchdir: { parameters: ["i32"], result: "i32" },
  // int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags);
  fchownat: { parameters: ["i32", "buffer", "u32", "u32", "i32"], result: "i32" },
  // int mkdirat(int dirfd, const char *path, mode_t mode);
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size);
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  // int fstatfs(int fd, struct statfs *buf);
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },

  // glibc >= 2.28: int statx(int dirfd, const char *path, int flags,
  //                          unsigned int mask, struct statx *buf);
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32", optional: true },
  // glibc >= 2.36: int open_tree(int dirfd, const char *path, unsigned int flags);
  open_tree: { parameters: ["i32", "buffer", "u32"], result: "i32", optional: true },
  // glibc >= 2.36: int move_mount(int from_dirfd, const char *from_path,
  //                               int to_dirfd, const char *to_path, unsigned int flags);
  move_mount: {
    parameters: ["i32", "buffer", "i32", "buffer", "u32"],
    result: "i32",
    optional: true,
  },
  // glibc >= 2.36: int mount_setattr(int dirfd, const char *path, unsigned int flags,
  //                                  struct mount_attr *attr, size_t size);
  mount_setattr: {
    parameters: ["i32", "buffer", "u32", "buffer", "usize"],
    result: "i32",
    optional: true,
  },

  // The Unix-socket calls (ffi/socket.ts) and what the mount broker needs
  // beside them: bound together on first use (their group in GROUPS).
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int bind(int fd, const struct sockaddr *addr, socklen_t len);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int fd, int backlog);
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int connect(int fd, const struct sockaddr *addr, socklen_t len);
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int shutdown(int fd, int how);
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // ssize_t sendmsg(int fd, const struct msghdr *msg, int flags);
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // int getsockopt(int fd, int level, int name, void *value, socklen_t *len);
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *arg);
  ioctl_arg: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t n, int timeout): on another thread, so
  // errno is lost; only the result is used (a ready count, 0, or -1).
  poll_wait: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },

  // What a userns helper is spawned, waited for and reaped with (lib/userns/
  // helper.ts), bound together on its first spawn (each symbol costs ~0.2
  // ms to bind: no posix_spawnattr_*). posix_spawnp runs
  // clone(CLONE_VM|CLONE_VFORK) and exec, safe in a threaded process; it
  // returns an error number instead of setting errno, as do the
  // posix_spawn_file_actions_* calls.
  // int pipe2(int fds[2], int flags);
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // int posix_spawnp(pid_t *pid, const char *file,
  //                  const posix_spawn_file_actions_t *actions,
  //                  const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
  posix_spawnp: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // int posix_spawn_file_actions_init(posix_spawn_file_actions_t *actions);
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  // int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *actions, int fd, int to);
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *actions);
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  // int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options);
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },

  // long syscall(long number, ...): one entry per call made through it.
  // syscall(SYS_statx, int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
  syscall_statx: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "i32", "u32", "buffer"],
    result: "i64",
  },
  // syscall(SYS_open_tree, int dirfd, const char *path, unsigned int flags)
  syscall_open_tree: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "u32"],
    result: "i64",
  },
  // syscall(SYS_move_mount, int from_dirfd, const char *from_path, int to_dirfd,
  //         const char *to_path, unsigned int flags)
  syscall_move_mount: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "i32", "buffer", "u32"],
    result: "i64",
  },
  // syscall(SYS_mount_setattr, int dirfd, const char *path, unsigned int flags,
  //         struct mount_attr *attr, size_t size)
  syscall_mount_setattr: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "u32", "buffer", "usize"],
    result: "i64",
  },
  // syscall(SYS_openat2, int dirfd, const char *path, struct open_how *how, size_t size)
  syscall_openat2: {
    name: "syscall",
    parameters: ["i64", "i32", "buffer", "buffer", "usize"],
    result: "i64",
  },
  // syscall(SYS_pidfd_open, pid_t pid, unsigned int flags) and
  // syscall(SYS_pidfd_send_signal, int pidfd, int sig, siginfo_t *info, unsigned int flags):
  // one entry for both, every argument a long.
  syscall_pidfd: {
    name: "syscall",
    parameters: ["i64", "i64", "i64", "i64", "i64"],
    result: "i64",
  },
} as const satisfies Deno.ForeignLibraryInterface;
