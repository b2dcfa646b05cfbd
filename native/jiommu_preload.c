/*
 * libjiommu-preload.so: makes an unmodified program's /dev/iommu a jiommu server.
 *
 *   jiommu serve --socket /tmp/jiommu.sock &
 *   JIOMMU_SOCKET=/tmp/jiommu.sock LD_PRELOAD=native/build/libjiommu-preload.so ./program
 *
 * open("/dev/iommu") connects a Unix stream socket to the server and returns it: the program's
 * iommufd *is* that socket, so dup, fork, close and exec keep the kernel's sharing rules (a file
 * lives while any fd names it). ioctl forwards (cmd, arg) only; the server reads and writes the
 * struct and every buffer it points to in this process with process_vm_readv/writev, so no ioctl
 * needs a marshaller here. Files an ioctl creates (fault queue, vEVENTQ, selftest access, dma-buf)
 * arrive as SCM_RIGHTS sockets during the call and take the lowest free fd, as the kernel's would;
 * read/write on them go to the server, and the server keeps one readiness byte in such a socket
 * while its file is readable, so poll, select and epoll on it are the kernel's own.
 *
 * After fork the child replaces each inherited iommufd socket by a connection of its own that
 * joins the same context, so both processes can call it and the server knows who calls.
 *
 * Environment: JIOMMU_SOCKET (default /tmp/jiommu.sock), JIOMMU_VFIO_CONTAINER=1 to also take
 * /dev/vfio/vfio, JIOMMU_DEVICE to take another path instead of /dev/iommu.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "jiommu_proto.h"

#define MAX_FD 65536
#define KIND_NONE 0
#define KIND_CTX 1
#define KIND_DERIVED 2
/* Where the hidden fd an mmap of the context keeps lives: above what programs normally use. */
#define HIDDEN_FD_MIN 900
#define MAX_MAPS 64

static unsigned char kinds[MAX_FD];
static int64_t tokens[MAX_FD];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t my_pid;

static struct {
	void *addr;
	size_t length;
	int64_t handle;
	int fd;
} maps[MAX_MAPS];

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)

static void resolve(void)
{
	if (real_ioctl)
		return;
	RESOLVE(open);
	RESOLVE(openat);
	RESOLVE(close);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(fcntl);
	RESOLVE(read);
	RESOLVE(write);
	RESOLVE(mmap);
	RESOLVE(munmap);
	RESOLVE(ioctl);
}

static int kind(int fd)
{
	return fd >= 0 && fd < MAX_FD ? kinds[fd] : KIND_NONE;
}

static void set_kind(int fd, int k, int64_t token)
{
	if (fd >= 0 && fd < MAX_FD) {
		kinds[fd] = (unsigned char)k;
		tokens[fd] = token;
	}
}

/* ---- socket I/O ------------------------------------------------------------------------- */

static int send_all(int s, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = send(s, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int spin_ns = -1;

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/*
 * The server answers a trivial call in a few microseconds, less than it takes the kernel to put
 * this thread to sleep and wake it again: wait for the reply's first byte polling for a while
 * (JIOMMU_SPIN_US, default 0: on a loaded machine the spinning client takes the CPU the server needs) before blocking.
 */
static void await_readable(int s)
{
	if (spin_ns < 0) {
		const char *e = getenv("JIOMMU_SPIN_US");
		spin_ns = (e && *e ? atoi(e) : 0) * 1000;
	}
	if (spin_ns == 0)
		return;
	uint64_t deadline = mono_ns() + (uint64_t)spin_ns;
	char c;
	do {
		if (recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT) != -1 || errno != EAGAIN)
			return;
	} while (mono_ns() < deadline);
}

/* Receives exactly n bytes; an fd riding on them lands in *fd_out (else -1). */
static int recv_all(int s, void *buf, size_t n, int *fd_out)
{
	char *p = buf;
	if (fd_out)
		*fd_out = -1;
	await_readable(s);
	while (n > 0) {
		struct iovec iov = { p, n };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} control;
		struct msghdr msg = { 0 };
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		ssize_t r = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && fd_out)
			memcpy(fd_out, CMSG_DATA(c), sizeof(int));
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_msg(int s, uint32_t op, uint32_t cmd, int64_t arg, int64_t arg2, const void *payload, uint32_t len)
{
	struct jiommu_msg m = { .op = op, .cmd = cmd, .pid = my_pid, .len = len, .arg = arg, .arg2 = arg2 };
	if (send_all(s, &m, sizeof(m)))
		return -1;
	if (len && send_all(s, payload, len))
		return -1;
	return 0;
}

static const char *socket_path(void)
{
	const char *p = getenv("JIOMMU_SOCKET");
	return p && *p ? p : "/tmp/jiommu.sock";
}

static int connect_server(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const char *path = socket_path();
	if (strlen(path) >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(a.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;
		real_close(s);
		errno = e;
		return -1;
	}
	return s;
}

/* Sends a request on a context socket and serves the server's callbacks until the reply. */
static int64_t call_ctx(int s, uint32_t op, uint32_t cmd, int64_t arg, int64_t arg2, struct jiommu_msg *reply)
{
	if (send_msg(s, op, cmd, arg, arg2, NULL, 0))
		return -EIO;
	for (;;) {
		struct jiommu_msg m;
		int fd;
		if (recv_all(s, &m, sizeof(m), &fd))
			return -EIO;
		switch (m.op) {
		case JIOMMU_OP_REPLY:
			if (reply)
				*reply = m;
			return m.arg;
		case JIOMMU_OP_INSTALL:
			/* received close-on-exec (MSG_CMSG_CLOEXEC), as the kernel installs these files
			 * (get_unused_fd_flags(O_CLOEXEC)) */
			if (fd >= 0)
				set_kind(fd, KIND_DERIVED, 0);
			if (send_msg(s, JIOMMU_OP_INSTALLED, 0, fd < 0 ? -EMFILE : fd, 0, NULL, 0))
				return -EIO;
			break;
		case JIOMMU_OP_CLOSEFD:
			if (kind((int)m.arg) == KIND_DERIVED) {
				set_kind((int)m.arg, KIND_NONE, 0);
				real_close((int)m.arg);
			}
			if (send_msg(s, JIOMMU_OP_CLOSED, 0, 0, 0, NULL, 0))
				return -EIO;
			break;
		default:
			return -EIO;
		}
	}
}

static int64_t errno_result(int64_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* ---- open ------------------------------------------------------------------------------- */

static int is_our_path(const char *path)
{
	if (!path)
		return 0;
	const char *dev = getenv("JIOMMU_DEVICE");
	if (!strcmp(path, dev && *dev ? dev : "/dev/iommu"))
		return 1;
	const char *vfio = getenv("JIOMMU_VFIO_CONTAINER");
	return vfio && !strcmp(vfio, "1") && !strcmp(path, "/dev/vfio/vfio");
}

static int open_ctx(int flags)
{
	pthread_mutex_lock(&lock);
	int s = connect_server();
	if (s < 0) {
		pthread_mutex_unlock(&lock);
		errno = ENODEV;
		return -1;
	}
	int64_t token = call_ctx(s, JIOMMU_OP_OPEN, (uint32_t)flags, 0, 0, NULL);
	if (token < 0) {
		real_close(s);
		pthread_mutex_unlock(&lock);
		errno = token == -EIO ? ENODEV : (int)-token;
		return -1;
	}
	if (!(flags & O_CLOEXEC))
		real_fcntl(s, F_SETFD, 0);
	set_kind(s, KIND_CTX, token);
	pthread_mutex_unlock(&lock);
	return s;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
	resolve();
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_our_path(path))
		return open_ctx(flags);
	return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
	resolve();
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_our_path(path))
		return open_ctx(flags);
	return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

/* ---- ioctl ------------------------------------------------------------------------------ */

int ioctl(int fd, unsigned long request, ...)
{
	resolve();
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (kind(fd) != KIND_CTX)
		return real_ioctl(fd, request, arg);
	pthread_mutex_lock(&lock);
	int64_t r = call_ctx(fd, JIOMMU_OP_IOCTL, (uint32_t)request, (int64_t)(uintptr_t)arg, 0, NULL);
	pthread_mutex_unlock(&lock);
	return (int)errno_result(r);
}

/* ---- fd bookkeeping --------------------------------------------------------------------- */

int close(int fd)
{
	resolve();
	if (kind(fd) != KIND_NONE)
		set_kind(fd, KIND_NONE, 0);
	return real_close(fd);
}

/* close_range and closefrom close without calling close(): forget what they closed. */
int close_range(unsigned int first, unsigned int last, int flags)
{
	static int (*real_close_range)(unsigned int, unsigned int, int);
	if (!real_close_range)
		real_close_range = dlsym(RTLD_NEXT, "close_range");
	int r = real_close_range ? real_close_range(first, last, flags) : (errno = ENOSYS, -1);
	if (r == 0 && !(flags & 4 /* CLOSE_RANGE_CLOEXEC */)) {
		for (unsigned int fd = first; fd <= last && fd < MAX_FD; fd++)
			kinds[fd] = KIND_NONE;
	}
	return r;
}

void closefrom(int lowfd)
{
	static void (*real_closefrom)(int);
	if (!real_closefrom)
		real_closefrom = dlsym(RTLD_NEXT, "closefrom");
	if (real_closefrom)
		real_closefrom(lowfd);
	for (int fd = lowfd < 0 ? 0 : lowfd; fd < MAX_FD; fd++)
		kinds[fd] = KIND_NONE;
}

static void copy_kind(int from, int to)
{
	if (to >= 0 && to != from)
		set_kind(to, kind(from), from >= 0 && from < MAX_FD ? tokens[from] : 0);
}

int dup(int fd)
{
	resolve();
	int n = real_dup(fd);
	copy_kind(fd, n);
	return n;
}

int dup2(int fd, int to)
{
	resolve();
	int n = real_dup2(fd, to);
	copy_kind(fd, n);
	return n;
}

int dup3(int fd, int to, int flags)
{
	resolve();
	int n = real_dup3(fd, to, flags);
	copy_kind(fd, n);
	return n;
}

int fcntl(int fd, int cmd, ...)
{
	resolve();
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r = real_fcntl(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		copy_kind(fd, r);
	return r;
}

int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* ---- derived files: read, write ---------------------------------------------------------- */

/* The readiness byte the server keeps in a derived socket while its file is readable. */
#define JIOMMU_MARKER 0xff

/* Reads a reply on a derived socket: the markers in front of it are dropped (the server re-sends
 * one after the reply when the file is still readable), so poll/epoll on the fd stay native. */
static int recv_derived_reply(int fd, struct jiommu_msg *m)
{
	for (;;) {
		unsigned char c;
		ssize_t r = recv(fd, &c, 1, MSG_PEEK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c != JIOMMU_MARKER)
			break;
		if (recv(fd, &c, 1, 0) != 1)
			return -1;
	}
	return recv_all(fd, m, sizeof(*m), NULL);
}

ssize_t read(int fd, void *buf, size_t count)
{
	resolve();
	if (kind(fd) != KIND_DERIVED)
		return real_read(fd, buf, count);
	pthread_mutex_lock(&lock);
	struct jiommu_msg m;
	int64_t r = -EIO;
	if (!send_msg(fd, JIOMMU_OP_READ, 0, (int64_t)count, 0, NULL, 0) && !recv_derived_reply(fd, &m)) {
		r = m.arg;
		if (m.len && recv_all(fd, buf, m.len, NULL))
			r = -EIO;
	}
	pthread_mutex_unlock(&lock);
	return errno_result(r);
}

ssize_t write(int fd, const void *buf, size_t count)
{
	resolve();
	if (kind(fd) != KIND_DERIVED)
		return real_write(fd, buf, count);
	if (count > (1u << 20))
		count = 1u << 20;
	pthread_mutex_lock(&lock);
	struct jiommu_msg m;
	int64_t r = -EIO;
	if (!send_msg(fd, JIOMMU_OP_WRITE, 0, (int64_t)count, 0, buf, (uint32_t)count) && !recv_derived_reply(fd, &m))
		r = m.arg;
	pthread_mutex_unlock(&lock);
	return errno_result(r);
}

/* ---- mmap of the context (driver MMIO windows) ------------------------------------------ */

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	resolve();
	if (kind(fd) != KIND_CTX || (flags & MAP_ANONYMOUS))
		return real_mmap(addr, length, prot, flags, fd, offset);
	pthread_mutex_lock(&lock);
	struct jiommu_msg reply;
	int64_t r = call_ctx(fd, JIOMMU_OP_MMAP, (uint32_t)prot, (int64_t)offset, (int64_t)length, &reply);
	void *mapped = MAP_FAILED;
	if (r == 0) {
		mapped = real_mmap(addr, length, prot | PROT_WRITE, (flags & MAP_FIXED) | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mapped != MAP_FAILED) {
			size_t n = reply.len < length ? reply.len : length;
			if (recv_all(fd, mapped, n, NULL) == 0 && reply.len > n) {
				char sink[256];
				for (size_t left = reply.len - n; left > 0;) {
					size_t k = left < sizeof(sink) ? left : sizeof(sink);
					if (recv_all(fd, sink, k, NULL))
						break;
					left -= k;
				}
			}
			if (!(prot & PROT_WRITE))
				mprotect(mapped, length, prot);
			int hidden = real_fcntl(fd, F_DUPFD_CLOEXEC, HIDDEN_FD_MIN);
			for (int i = 0; i < MAX_MAPS; i++) {
				if (!maps[i].addr) {
					maps[i].addr = mapped;
					maps[i].length = length;
					maps[i].handle = reply.arg2;
					maps[i].fd = hidden;
					break;
				}
			}
		}
	} else {
		/* drain a payload the server may have attached to a refusal (none today) */
		errno = r == -EIO ? ENODEV : (int)-r;
	}
	pthread_mutex_unlock(&lock);
	return mapped;
}

void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset) __attribute__((alias("mmap")));

int munmap(void *addr, size_t length)
{
	resolve();
	int r = real_munmap(addr, length);
	if (r == 0) {
		pthread_mutex_lock(&lock);
		for (int i = 0; i < MAX_MAPS; i++) {
			if (maps[i].addr && (char *)maps[i].addr >= (char *)addr && (char *)maps[i].addr < (char *)addr + length) {
				if (maps[i].fd >= 0) {
					call_ctx(maps[i].fd, JIOMMU_OP_MUNMAP, 0, 0, maps[i].handle, NULL);
					real_close(maps[i].fd);
				}
				maps[i].addr = NULL;
			}
		}
		pthread_mutex_unlock(&lock);
	}
	return r;
}

/* ---- fork ------------------------------------------------------------------------------- */

static void before_fork(void)
{
	pthread_mutex_lock(&lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

/* The child gets a connection of its own for every inherited iommufd, joined to the same context. */
static void after_fork_child(void)
{
	my_pid = getpid();
	for (int fd = 0; fd < MAX_FD; fd++) {
		if (kinds[fd] != KIND_CTX)
			continue;
		int s = connect_server();
		if (s < 0)
			continue;
		if (call_ctx(s, JIOMMU_OP_ATTACH, 0, tokens[fd], 0, NULL) != 0) {
			real_close(s);
			continue;
		}
		int cloexec = real_fcntl(fd, F_GETFD, 0) & FD_CLOEXEC;
		if (real_dup3(s, fd, cloexec ? O_CLOEXEC : 0) < 0)
			continue;
		real_close(s);
	}
	for (int i = 0; i < MAX_MAPS; i++) {
		/* the child's copy of a mapping keeps the server's handle alive through the parent's */
		if (maps[i].addr && maps[i].fd >= 0)
			maps[i].fd = -1;
	}
	pthread_mutex_unlock(&lock);
}

/*
 * After exec the fd table is the old program's: find the iommufds and derived files it kept (no
 * O_CLOEXEC). An iommufd is a socket connected to the server's path; a derived file is a socket
 * whose peer is the server process (SO_PEERCRED), learnt by connecting once when there is any
 * unknown Unix socket.
 */
static void adopt_inherited_fds(void)
{
	int dir = real_open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return;
	char buf[4096];
	pid_t server = 0;
	int candidates[256];
	int ncandidates = 0;
	for (;;) {
		long n = syscall(SYS_getdents64, dir, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct linux_dirent64 {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(buf + off);
			off += d->reclen;
			int fd = atoi(d->name);
			if (d->name[0] < '0' || d->name[0] > '9' || fd == dir || fd >= MAX_FD)
				continue;
			struct sockaddr_un peer;
			socklen_t len = sizeof(peer);
			memset(&peer, 0, sizeof(peer));
			if (getpeername(fd, (struct sockaddr *)&peer, &len) || peer.sun_family != AF_UNIX)
				continue;
			if (len > offsetof(struct sockaddr_un, sun_path) && !strcmp(peer.sun_path, socket_path())) {
				int64_t token = call_ctx(fd, JIOMMU_OP_TOKEN, 0, 0, 0, NULL);
				if (token > 0)
					set_kind(fd, KIND_CTX, token);
			} else if (ncandidates < 256) {
				candidates[ncandidates++] = fd;
			}
		}
	}
	real_close(dir);
	if (ncandidates == 0)
		return;
	int s = connect_server();
	if (s < 0)
		return;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (!getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen))
		server = cred.pid;
	real_close(s);
	for (int i = 0; server > 0 && i < ncandidates; i++) {
		clen = sizeof(cred);
		if (!getsockopt(candidates[i], SOL_SOCKET, SO_PEERCRED, &cred, &clen) && cred.pid == server)
			set_kind(candidates[i], KIND_DERIVED, 0);
	}
}

__attribute__((constructor)) static void jiommu_preload_init(void)
{
	resolve();
	my_pid = getpid();
	adopt_inherited_fds();
	/* Yama (ptrace_scope 1) lets only ancestors read our memory; the server is not one. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
