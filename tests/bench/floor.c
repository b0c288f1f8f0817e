/*
 * The C floor of the bench: the operations the library makes, timed with no
 * runtime at all. tests/bench/_floor.ts builds it with `cc` into a temporary
 * directory and drives it over a pipe.
 *
 * Usage: floor <dir> <host-id>
 *
 * <dir> is a directory the caller may id-map (rootless: on a tmpfs its user
 * namespace owns); <host-id> is an id the caller may map (rootless: within
 * its own ranges). At start it makes one user namespace (0 <host-id> 1) for
 * the idmap and dup operations. Then it reads lines "<op> <n>" from stdin,
 * runs the operation n/10 times (at least once, at most 100 times) untimed,
 * so that a batch starts on a warm CPU as the caller's do, then n times, and
 * answers one line: the mean time of one of the n in microseconds, or
 * "error: ..." (and exits 1). Operations:
 *
 *   open    open(<dir>, O_PATH|O_CLOEXEC) + close
 *   idmap   open_tree(OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC) + mount_setattr(MOUNT_ATTR_IDMAP) + close
 *   dup     fcntl(F_DUPFD_CLOEXEC) + close, of the user namespace fd
 *   userns  clone(CLONE_NEWUSER) + setgroups, uid_map, gid_map + open ns/user + kill + wait + close
 *   pooled  uid_map, gid_map + open ns/user, of a process already waiting in its new user
 *           namespace with setgroups denied (what a pool of helpers prepares): the clone
 *           before and the kill, wait and close after are not timed
 *
 * EOF on stdin ends it, with status 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define FLOOR_OPEN_TREE_CLONE 1
#define FLOOR_MOUNT_ATTR_IDMAP 0x00100000ULL

/* struct mount_attr of linux/mount.h, under a name of our own. */
struct floor_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

static const char *dir;
static unsigned long host_id;
static int userns_fd = -1;

static void fail(const char *what)
{
	printf("error: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void write_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	int fd;
	ssize_t len = (ssize_t)strlen(text);

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, (size_t)len) != len) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		errno = saved;
		fail(name);
	}
	close(fd);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/*
 * A user namespace mapping 0 to host_id: its fd. The child only waits to be
 * killed. With took: the time of the maps and the open of ns/user alone, what
 * a get pays when a process waits ready in its new namespace, setgroups
 * denied (a pool of helpers).
 */
static int make_userns(double *took)
{
	char path[64], map[64];
	double start;
	pid_t pid;
	int fd;

	/* fork-like: no new stack, the child only waits to be killed. */
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		fail("clone(CLONE_NEWUSER)");
	if (pid == 0) {
		for (;;)
			pause();
	}
	snprintf(map, sizeof(map), "0 %lu 1\n", host_id);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	write_file(pid, "setgroups", "deny\n");
	start = now_us();
	write_file(pid, "uid_map", map);
	write_file(pid, "gid_map", map);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (took)
		*took = now_us() - start;
	kill(pid, SIGKILL);
	if (fd < 0)
		fail("open ns/user");
	if (waitpid(pid, NULL, 0) != pid)
		fail("waitpid");
	return fd;
}

static void op_open(void)
{
	int fd = open(dir, O_PATH | O_CLOEXEC);
	if (fd < 0)
		fail("open(O_PATH)");
	close(fd);
}

static void op_idmap(void)
{
	struct floor_mount_attr attr = {
		.attr_set = FLOOR_MOUNT_ATTR_IDMAP,
		.userns_fd = (uint64_t)userns_fd,
	};
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, dir, FLOOR_OPEN_TREE_CLONE | O_CLOEXEC);
	if (fd < 0)
		fail("open_tree(OPEN_TREE_CLONE)");
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		fail("mount_setattr(MOUNT_ATTR_IDMAP)");
	close(fd);
}

static void op_dup(void)
{
	int fd = fcntl(userns_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		fail("fcntl(F_DUPFD_CLOEXEC)");
	close(fd);
}

static void op_userns(void)
{
	close(make_userns(NULL));
}

/* The pool's floor: the time of the maps and the open alone, in microseconds. */
static double op_pooled(void)
{
	double took;

	close(make_userns(&took));
	return took;
}

int main(int argc, char *argv[])
{
	char line[128], name[32];
	long n;

	if (argc != 3) {
		fprintf(stderr, "usage: floor <dir> <host-id>\n");
		return 2;
	}
	dir = argv[1];
	host_id = strtoul(argv[2], NULL, 10);
	userns_fd = make_userns(NULL);
	while (fgets(line, sizeof(line), stdin)) {
		void (*op)(void) = NULL;
		double start;

		if (sscanf(line, "%31s %ld", name, &n) != 2 || n < 1) {
			errno = EINVAL;
			fail("request");
		}
		if (!strcmp(name, "open"))
			op = op_open;
		else if (!strcmp(name, "idmap"))
			op = op_idmap;
		else if (!strcmp(name, "dup"))
			op = op_dup;
		else if (!strcmp(name, "userns"))
			op = op_userns;
		else if (!strcmp(name, "pooled")) {
			double total = 0;

			for (long i = 0; i < n / 10 + 1 && i < 100; i++)
				op_pooled();
			for (long i = 0; i < n; i++)
				total += op_pooled();
			printf("%.4f\n", total / (double)n);
			fflush(stdout);
			continue;
		}
		if (!op) {
			errno = EINVAL;
			fail(name);
		}
		for (long i = 0; i < n / 10 + 1 && i < 100; i++)
			op();
		start = now_us();
		for (long i = 0; i < n; i++)
			op();
		printf("%.4f\n", (now_us() - start) / (double)n);
		fflush(stdout);
	}
	return 0;
}
