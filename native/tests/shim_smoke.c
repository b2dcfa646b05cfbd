/*
 * shim_smoke: the shim's fd rules checked from a real C process (ServerShimTest runs it under
 * libjiommu-preload.so against an embedded server). Exits 0 when every check holds; otherwise
 * prints the first failed check and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define T ';'
#define IOMMU_DESTROY _IO(T, 0x80)
#define IOMMU_IOAS_ALLOC _IO(T, 0x81)
#define IOMMU_IOAS_IOVA_RANGES _IO(T, 0x84)
#define IOMMU_FAULT_QUEUE_ALLOC _IO(T, 0x8e)

struct destroy { uint32_t size, id; };
struct ioas_alloc { uint32_t size, flags, out_ioas_id; };
struct iova_ranges { uint32_t size, ioas_id, num_iovas, reserved; uint64_t allowed_iovas, out_iova_alignment; };
struct fault_alloc { uint32_t size, flags, out_fault_id, out_fault_fd; };

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			printf("shim_smoke: line %d: %s (errno %d %s)\n", __LINE__, #cond, errno, \
			       strerror(errno));                                               \
			return 1;                                                              \
		}                                                                              \
	} while (0)

static int ranges(int fd, uint32_t ioas)
{
	struct iova_ranges r = { .size = sizeof(r), .ioas_id = ioas };
	/* no room for ranges: EMSGSIZE with num_iovas filled in, as the kernel answers */
	return ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r) == -1 && errno == EMSGSIZE && r.num_iovas >= 1 ? 0 : -1;
}

/* After exec: the iommufd and the fault fd the old program left open are still ours. */
static int after_exec(char **argv)
{
	int fd = atoi(argv[2]), fault_fd = atoi(argv[4]);
	uint32_t ioas = (uint32_t)atoi(argv[3]);
	CHECK(ranges(fd, ioas) == 0);
	char byte;
	CHECK(read(fault_fd, &byte, 1) <= 0); /* answered by the server; a plain socket read would block */
	printf("shim_smoke: after exec ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 4 && !strcmp(argv[1], "--after-exec"))
		return after_exec(argv);
	if (argc > 1 && !strcmp(argv[1], "--as-nobody")) {
		/* the server admits its own uid and root only (SO_PEERCRED), even when the socket's mode would let us in */
		CHECK(setgid(65534) == 0 && setuid(65534) == 0);
		CHECK(open("/dev/iommu", O_RDWR) == -1);
		printf("shim_smoke: refused ok\n");
		return 0;
	}
	int fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	struct ioas_alloc a = { .size = sizeof(a) };
	CHECK(ioctl(fd, IOMMU_IOAS_ALLOC, &a) == 0 && a.out_ioas_id != 0);
	uint32_t ioas = a.out_ioas_id;

	/* errno as the kernel sets it */
	CHECK(ioctl(fd, _IO(T, 0xbf), &a) == -1 && errno == ENOTTY);
	CHECK(ioctl(fd, IOMMU_IOAS_ALLOC, (void *)16) == -1 && errno == EFAULT);
	a.size = 4;
	CHECK(ioctl(fd, IOMMU_IOAS_ALLOC, &a) == -1 && errno == EINVAL);
	CHECK(ranges(fd, ioas) == 0);

	/* dup shares the context; closing one fd leaves it to the other */
	int fd2 = dup(fd);
	CHECK(fd2 > fd);
	CHECK(close(fd) == 0);
	CHECK(ranges(fd2, ioas) == 0);

	/* a forked child calls the same context through the inherited fd */
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0)
		_exit(ranges(fd2, ioas) == 0 ? 0 : 3);
	int status;
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(ranges(fd2, ioas) == 0);

	/* a derived file: the lowest free fd, pollable natively, released by close() at once */
	int expected = dup(0);
	CHECK(expected >= 0 && close(expected) == 0);
	struct fault_alloc f = { .size = sizeof(f) };
	CHECK(ioctl(fd2, IOMMU_FAULT_QUEUE_ALLOC, &f) == 0);
	CHECK((int)f.out_fault_fd == expected);
	struct pollfd p = { .fd = (int)f.out_fault_fd, .events = POLLIN };
	CHECK(poll(&p, 1, 0) == 0);

	/* derived files are close-on-exec, as the kernel makes them */
	CHECK(fcntl((int)f.out_fault_fd, F_GETFD) == FD_CLOEXEC);

	/* exec keeps fds without O_CLOEXEC: the new program's shim finds them */
	CHECK(fcntl((int)f.out_fault_fd, F_SETFD, 0) == 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		char sfd[16], sioas[16], sfault[16];
		snprintf(sfd, sizeof(sfd), "%d", fd2);
		snprintf(sioas, sizeof(sioas), "%u", ioas);
		snprintf(sfault, sizeof(sfault), "%u", f.out_fault_fd);
		execl("/proc/self/exe", argv[0], "--after-exec", sfd, sioas, sfault, (char *)NULL);
		_exit(4);
	}
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);

	struct destroy d = { .size = sizeof(d), .id = f.out_fault_id };
	CHECK(ioctl(fd2, IOMMU_DESTROY, &d) == -1 && errno == EBUSY);
	CHECK(close((int)f.out_fault_fd) == 0);
	CHECK(ioctl(fd2, IOMMU_DESTROY, &d) == 0);

	CHECK(close(fd2) == 0);
	CHECK(ioctl(fd2, IOMMU_IOAS_ALLOC, &a) == -1 && errno == EBADF);

	/* the VFIO container path, when asked for: an iommufd answering the type1 container ioctls */
	setenv("JIOMMU_VFIO_CONTAINER", "1", 1);
	int container = open("/dev/vfio/vfio", O_RDWR);
	CHECK(container >= 0);
	CHECK(ioctl(container, _IO(T, 100) /* VFIO_GET_API_VERSION */) == 0);
	CHECK(ioctl(container, _IO(T, 101) /* VFIO_CHECK_EXTENSION */, 3 /* VFIO_TYPE1v2_IOMMU */) == 1);
	CHECK(close(container) == 0);
	printf("shim_smoke: ok\n");
	return 0;
}
