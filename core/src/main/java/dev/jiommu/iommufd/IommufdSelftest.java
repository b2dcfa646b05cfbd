package dev.jiommu.iommufd;

import dev.jiommu.mem.DmaBuf;

/**
 * The kernel selftest's IOMMU_TEST_CMD operations as a typed API (iommufd-uapi.md §8). User
 * pointers ({@code uptr}) are virtual addresses of the context's user memory; access "fds" are
 * handles returned by {@link #createAccess}.
 */
public interface IommufdSelftest {
    /** CREATE_ACCESS flag: the access pins pages (forces the IOAS alignment to the CPU page). */
    int ACCESS_CREATE_NEEDS_PIN_PAGES = 1;
    /** ACCESS_PAGES flag: pin for writing. */
    int ACCESS_PAGES_WRITE = 1;
    /** Flag bit the kernel uses for its fuzzer's IOVA encoding; accepted and ignored. */
    int FLAGS_SYZ = 1 << 16;
    /** ACCESS_RW flags. */
    int ACCESS_RW_WRITE = 1;
    int ACCESS_RW_SLOW_PATH = 1 << 2;
    /** The longest ACCESS_PAGES / ACCESS_RW the mock accepts (protects the fuzzer). */
    long ACCESS_MAX_BYTES = 16L << 20;

    /** ADD_RESERVED: reserves [start, start + length) of IOAS {@code ioasId}. */
    void addReserved(int ioasId, long start, long lengthBytes);

    /** What MOCK_DOMAIN returns: the selftest object, the HWPT attached, the DEVICE. */
    record MockDomain(int stdevId, int hwptId, int idevId) {
    }

    /** MOCK_DOMAIN: a new mock device, bound and attached to {@code ptId} (an IOAS or an HWPT). */
    MockDomain mockDomain(int ptId);

    /** MOCK_DOMAIN_FLAGS: as {@link #mockDomain} with device flags (NO_DIRTY 1, PASID 4; others EINVAL). */
    MockDomain mockDomainFlags(int ptId, int deviceFlags);

    /** MOCK_DOMAIN_REPLACE: {@return the HWPT the device's RID is now attached to} */
    int mockDomainReplace(int stdevId, int ptId);

    /** MD_CHECK_MAP: every mock page of the range translates to the memory behind {@code uptr}, else EINVAL. */
    void mdCheckMap(int hwptId, long iova, long lengthBytes, long uptr);

    /** MD_CHECK_REFS: every CPU page of [uptr, uptr + length) has {@code refs} pins, else EIO. */
    void mdCheckRefs(long uptr, long lengthBytes, int refs);

    /** CREATE_ACCESS: {@return the access's handle (the kernel returns an fd)} */
    int createAccess(int ioasId, int flags);

    /** Closes an access handle: the access and its pins go away. */
    void closeAccess(int accessFd);

    /** DESTROY_ACCESS_PAGES: releases one pin item. */
    void destroyAccessPages(int accessFd, int accessPagesId);

    /** ACCESS_PAGES: pins [iova, iova + length); checks the pages are those behind {@code uptr} (0 skips). {@return the item id} */
    int accessPages(int accessFd, int flags, long iova, long lengthBytes, long uptr);

    /** ACCESS_RW: copies between [uptr, +length) and [iova, +length) (WRITE: user memory → IOVA). */
    void accessRw(int accessFd, long iova, long lengthBytes, long uptr, int flags);

    /**
     * DIRTY: for every bit set in the bitmap at {@code uptr} (bit i for {@code iova + i * pageSize}),
     * marks dirty the IOPTE that translates it, as a device write would. {@return the number of bits set (out_nr_dirty)}
     */
    long dirty(int hwptId, int flags, long iova, long lengthBytes, long pageSize, long uptr);

    /** PASID_ATTACH: attaches the selftest device's {@code pasid} to {@code ptId}; {@return the HWPT attached} */
    int pasidAttach(int stdevId, int pasid, int ptId);

    /** PASID_REPLACE: {@return the HWPT now attached at {@code pasid}} */
    int pasidReplace(int stdevId, int pasid, int ptId);

    /** PASID_DETACH: detaches {@code pasid} (nothing attached is fine). */
    void pasidDetach(int stdevId, int pasid);

    /** PASID_CHECK_HWPT: succeeds iff {@code pasid} is attached to {@code hwptId} (0: detached), else EINVAL. */
    void pasidCheckHwpt(int stdevId, int pasid, int hwptId);

    /** MD_CHECK_IOTLB: slot {@code slot} of mock nested HWPT {@code hwptId} must hold {@code iotlb}, else EINVAL. */
    void mdCheckIotlb(int hwptId, int slot, int iotlb);

    /** DEV_CHECK_CACHE: cache slot {@code slot} of mock device {@code devId} must hold {@code cache}, else EINVAL. */
    void devCheckCache(int devId, int slot, int cache);

    /**
     * TRIGGER_IOPF: device {@code devId} raises one page request (LAST_PAGE; PASID_VALID when
     * {@code pasid} is not 0) to the fault queue of the HWPT attached at that PASID.
     */
    void triggerIopf(int devId, int pasid, int grpid, int perm, long addr);

    /** {@code IOMMU_VEVENTQ_TYPE_SELFTEST}. */
    int VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;

    /**
     * TRIGGER_VEVENT: device {@code devId}, attached to a nested HWPT of a vIOMMU where it has a
     * vDEVICE (else ENOENT), reports {virt_id} to that vIOMMU's selftest vEVENTQ (none: EOPNOTSUPP).
     */
    void triggerVevent(int devId);

    /** DMABUF_GET: a test dma-buf of {@code lengthBytes} rounded up to pages (0 or above 512 pages: EINVAL). */
    DmaBuf dmabufGet(long lengthBytes);

    /** DMABUF_REVOKE: revokes or restores a test dma-buf (one not made by {@link #dmabufGet}: EOPNOTSUPP). */
    void dmabufRevoke(DmaBuf buf, boolean revoked);

    /** SET_TEMP_MEMORY_LIMIT: the pinning batch buffer size in bytes (at least 12). */
    void setTempMemoryLimit(int limitBytes);

    /** ACCESS_REPLACE_IOAS: re-points the access to another IOAS, revoking its pins in the old one. */
    void accessReplaceIoas(int accessFd, int ioasId);
}
