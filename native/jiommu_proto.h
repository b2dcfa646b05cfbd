/*
 * The jiommu server's wire protocol, as the C side sees it (the Java side is
 * dev.jiommu.app.server.Wire). Every message is one 32-byte header, little-endian, followed by
 * `len` payload bytes; an fd travels as SCM_RIGHTS on the header's first byte.
 *
 * Connection: one Unix stream socket per iommufd the client opened (and one per process that
 * inherited it), plus one socketpair per derived file (fault queue, vEVENTQ, access, dma-buf).
 */
#ifndef JIOMMU_PROTO_H
#define JIOMMU_PROTO_H
#include <stdint.h>

struct jiommu_msg {
	uint32_t op;   /* JIOMMU_OP_* */
	uint32_t cmd;  /* ioctl number, open flags, poll events, mmap prot */
	int32_t pid;   /* the calling process */
	uint32_t len;  /* payload bytes after the header */
	int64_t arg;   /* ioctl arg pointer / token / offset / count; the result in a reply */
	int64_t arg2;  /* mmap length, mapping handle */
};

/* client -> server on a context socket */
#define JIOMMU_OP_OPEN     1  /* cmd = open flags; reply arg = context token or -errno */
#define JIOMMU_OP_ATTACH   2  /* arg = token: this connection joins an existing context (fork) */
#define JIOMMU_OP_IOCTL    3  /* cmd, arg = the caller's pointer; reply arg = result or -errno */
#define JIOMMU_OP_MMAP     4  /* arg = offset, arg2 = length; reply arg = 0/-errno, arg2 = handle, payload = bytes */
#define JIOMMU_OP_MUNMAP   5  /* arg2 = handle */
#define JIOMMU_OP_TOKEN    6  /* reply arg = this connection's context token (a socket inherited across exec) */
/* client -> server on a derived socket */
#define JIOMMU_OP_READ     16 /* arg = count; reply arg = bytes or -errno, payload = bytes */
#define JIOMMU_OP_WRITE    17 /* payload = bytes; reply arg = bytes or -errno */
#define JIOMMU_OP_POLL     18 /* cmd = events; reply arg = revents */
/* server -> client */
#define JIOMMU_OP_REPLY    32
#define JIOMMU_OP_INSTALL  33 /* SCM_RIGHTS: a new derived fd; the client answers INSTALLED with its number */
#define JIOMMU_OP_CLOSEFD  34 /* arg = fd the client must close; answered by CLOSED */
/* client -> server, answers inside an ioctl */
#define JIOMMU_OP_INSTALLED 48
#define JIOMMU_OP_CLOSED    49

#endif
