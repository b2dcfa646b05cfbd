/*
 * jiommu-bench: round-trip latency of iommufd ioctls as a C program sees them, beside a getppid()
 * syscall measured in the same run. Run it under the shim (scripts/shim-bench.sh does) or on a
 * real /dev/iommu (then the test ioctl is only there with CONFIG_IOMMUFD_TEST).
 *
 *   jiommu-bench [ITERATIONS]
 *
 * Each operation is first run max(ITERATIONS, 20000) times untimed (the server's JIT warms up),
 * then ITERATIONS times timed.
 * Prints one line per operation: median, p99 and mean in microseconds.
 * The structs are written here from the iommufd UAPI (iommufd-uapi.md), so no kernel header is needed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define IOMMU_TYPE ';'
#define IOMMU_IOAS_ALLOC _IO(IOMMU_TYPE, 0x81)
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMU_TYPE, 0x84)
#define IOMMU_IOAS_MAP _IO(IOMMU_TYPE, 0x85)
#define IOMMU_IOAS_UNMAP _IO(IOMMU_TYPE, 0x86)
#define IOMMU_TEST_CMD _IO(IOMMU_TYPE, 0xa0)
#define MAP_FIXED_IOVA 1
#define MAP_WRITEABLE 2
#define MAP_READABLE 4
#define TEST_OP_MOCK_DOMAIN 2
#define TEST_CMD_BYTES 72
#define MOCK_APERTURE_START (1ull << 24)

struct ioas_alloc { uint32_t size, flags, out_ioas_id; };
struct iova_range { uint64_t start, last; };
struct iova_ranges { uint32_t size, ioas_id, num_iovas, reserved; uint64_t allowed_iovas, out_iova_alignment; };
struct ioas_map { uint32_t size, flags, ioas_id, reserved; uint64_t user_va, length, iova; };
struct ioas_unmap { uint32_t size, ioas_id; uint64_t iova, length; };

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, int n)
{
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)ns[i];
	qsort(ns, (size_t)n, sizeof(*ns), cmp);
	printf("%-44s median %9.2f us   p99 %9.2f us   mean %9.2f us   (n=%d)\n", what, ns[n / 2] / 1000.0,
	       ns[(int)((n - 1) * 0.99)] / 1000.0, sum / n / 1000.0, n);
}

static void die(const char *what)
{
	fprintf(stderr, "jiommu-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint32_t ioas_alloc(int fd)
{
	struct ioas_alloc a = { .size = sizeof(a) };
	if (ioctl(fd, IOMMU_IOAS_ALLOC, &a))
		die("IOMMU_IOAS_ALLOC");
	return a.out_ioas_id;
}

/* One 4 KiB map + unmap per iteration: the map timed in map_ns, the unmap in unmap_ns. */
static void map_unmap(int fd, uint32_t ioas, void *page, uint64_t *map_ns, uint64_t *unmap_ns, int n)
{
	struct ioas_map m = { .size = sizeof(m), .flags = MAP_FIXED_IOVA | MAP_READABLE | MAP_WRITEABLE,
			      .ioas_id = ioas, .user_va = (uintptr_t)page, .length = 4096, .iova = MOCK_APERTURE_START };
	struct ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas, .iova = MOCK_APERTURE_START, .length = 4096 };
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		if (ioctl(fd, IOMMU_IOAS_MAP, &m))
			die("IOMMU_IOAS_MAP");
		uint64_t t1 = now_ns();
		if (ioctl(fd, IOMMU_IOAS_UNMAP, &u))
			die("IOMMU_IOAS_UNMAP");
		uint64_t t2 = now_ns();
		if (map_ns)
			map_ns[i] = t1 - t0;
		if (unmap_ns)
			unmap_ns[i] = t2 - t1;
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	/* The server is a JVM: let its JIT compile the paths before timing them. */
	int warm = n < 20000 ? 20000 : n;
	uint64_t *ns = calloc((size_t)n, sizeof(*ns));
	uint64_t *ns2 = calloc((size_t)n, sizeof(*ns2));
	if (!ns || !ns2 || n < 10)
		die("arguments");

	int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/iommu");
	uint32_t ioas = ioas_alloc(fd);
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		die("mmap");
	memset(page, 1, 4096);

	/* getppid: a real syscall on every call (glibc caches getpid, not getppid) */
	for (int i = 0; i < warm; i++)
		(void)getppid();
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		(void)getppid();
		ns[i] = now_ns() - t0;
	}
	report("getppid() syscall (baseline)", ns, n);

	struct iova_range ranges[4];
	struct iova_ranges r = { .size = sizeof(r), .ioas_id = ioas, .num_iovas = 4, .allowed_iovas = (uintptr_t)ranges };
	for (int i = 0; i < warm + n; i++) {
		r.num_iovas = 4;
		uint64_t t0 = now_ns();
		if (ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r))
			die("IOMMU_IOAS_IOVA_RANGES");
		if (i >= warm)
			ns[i - warm] = now_ns() - t0;
	}
	report("IOMMU_IOAS_IOVA_RANGES", ns, n);

	map_unmap(fd, ioas, page, NULL, NULL, warm);
	map_unmap(fd, ioas, page, ns, ns2, n);
	report("IOMMU_IOAS_MAP 4 KiB (no domain)", ns, n);
	report("IOMMU_IOAS_UNMAP 4 KiB (no domain)", ns2, n);

	/* With a mock domain attached, a map pins the page and fills the domain. */
	uint32_t ioas2 = ioas_alloc(fd);
	unsigned char cmd[TEST_CMD_BYTES] = { 0 };
	uint32_t words[3] = { TEST_CMD_BYTES, TEST_OP_MOCK_DOMAIN, ioas2 };
	memcpy(cmd, words, sizeof(words));
	if (ioctl(fd, IOMMU_TEST_CMD, cmd) == 0) {
		map_unmap(fd, ioas2, page, NULL, NULL, warm);
		map_unmap(fd, ioas2, page, ns, ns2, n);
		report("IOMMU_IOAS_MAP 4 KiB (mock domain: pin)", ns, n);
		report("IOMMU_IOAS_UNMAP 4 KiB (mock domain: unpin)", ns2, n);
	} else {
		printf("(no IOMMU_TEST_CMD: %s; the domain rows are left out)\n", strerror(errno));
	}
	close(fd);
	return 0;
}
