package dev.jiommu.abi;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;
import static java.lang.foreign.MemoryLayout.unionLayout;

/**
 * {@code struct iommu_test_cmd} (IOMMU_TEST_CMD, 72 bytes; 68 up to {@code last}): the selftest's
 * operations (iommufd_test.h, iommufd-uapi.md §8.1). Each operation's arguments are one member of a
 * 48-byte union at offset 16; the accessors are named {@code <member><Field>} and read or write at
 * the member field's absolute offset. Members that only extend another one ({@code mock_domain_flags},
 * {@code pasid_replace}) share that member's accessors for the fields they have in common.
 */
public final class TestCmdStruct {
    /** {@code IOMMU_TEST_OP_*}: the operation numbers, 1 upwards in the header's order. */
    public static final int OP_ADD_RESERVED = 1;
    public static final int OP_MOCK_DOMAIN = 2;
    public static final int OP_MD_CHECK_MAP = 3;
    public static final int OP_MD_CHECK_REFS = 4;
    public static final int OP_CREATE_ACCESS = 5;
    public static final int OP_DESTROY_ACCESS_PAGES = 6;
    public static final int OP_ACCESS_PAGES = 7;
    public static final int OP_ACCESS_RW = 8;
    public static final int OP_SET_TEMP_MEMORY_LIMIT = 9;
    public static final int OP_MOCK_DOMAIN_REPLACE = 10;
    public static final int OP_ACCESS_REPLACE_IOAS = 11;
    public static final int OP_MOCK_DOMAIN_FLAGS = 12;
    public static final int OP_DIRTY = 13;
    public static final int OP_MD_CHECK_IOTLB = 14;
    public static final int OP_TRIGGER_IOPF = 15;
    public static final int OP_DEV_CHECK_CACHE = 16;
    public static final int OP_TRIGGER_VEVENT = 17;
    public static final int OP_PASID_ATTACH = 18;
    public static final int OP_PASID_REPLACE = 19;
    public static final int OP_PASID_DETACH = 20;
    public static final int OP_PASID_CHECK_HWPT = 21;
    public static final int OP_DMABUF_GET = 22;
    public static final int OP_DMABUF_REVOKE = 23;

    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("op"),
            U32.withName("id"),
            U32.withName("__reserved"),
            unionLayout(
                    structLayout(U64.withName("start"), U64.withName("length")).withName("add_reserved"),
                    structLayout(
                            U32.withName("out_stdev_id"),
                            U32.withName("out_hwpt_id"),
                            U32.withName("out_idev_id")).withName("mock_domain"),
                    structLayout(
                            U32.withName("out_stdev_id"),
                            U32.withName("out_hwpt_id"),
                            U32.withName("out_idev_id"),
                            U32.withName("dev_flags")).withName("mock_domain_flags"),
                    structLayout(U32.withName("pt_id")).withName("mock_domain_replace"),
                    structLayout(U64.withName("iova"), U64.withName("length"), U64.withName("uptr")).withName("check_map"),
                    structLayout(U64.withName("length"), U64.withName("uptr"), U32.withName("refs")).withName("check_refs"),
                    structLayout(U32.withName("out_access_fd"), U32.withName("flags")).withName("create_access"),
                    structLayout(U32.withName("access_pages_id")).withName("destroy_access_pages"),
                    structLayout(
                            U32.withName("flags"),
                            U32.withName("out_access_pages_id"),
                            U64.withName("iova"),
                            U64.withName("length"),
                            U64.withName("uptr")).withName("access_pages"),
                    structLayout(
                            U64.withName("iova"),
                            U64.withName("length"),
                            U64.withName("uptr"),
                            U32.withName("flags")).withName("access_rw"),
                    structLayout(U32.withName("limit")).withName("memory_limit"),
                    structLayout(U32.withName("ioas_id")).withName("access_replace_ioas"),
                    structLayout(
                            U32.withName("flags"),
                            MemoryLayout.paddingLayout(4),
                            U64.withName("iova"),
                            U64.withName("length"),
                            U64.withName("page_size"),
                            U64.withName("uptr"),
                            U64.withName("out_nr_dirty")).withName("dirty"),
                    structLayout(U32.withName("id"), U32.withName("iotlb")).withName("check_iotlb"),
                    structLayout(
                            U32.withName("dev_id"),
                            U32.withName("pasid"),
                            U32.withName("grpid"),
                            U32.withName("perm"),
                            U64.withName("addr")).withName("trigger_iopf"),
                    structLayout(U32.withName("id"), U32.withName("cache")).withName("check_dev_cache"),
                    structLayout(U32.withName("dev_id")).withName("trigger_vevent"),
                    structLayout(U32.withName("pasid"), U32.withName("pt_id")).withName("pasid_attach"),
                    structLayout(U32.withName("pasid"), U32.withName("pt_id")).withName("pasid_replace"),
                    structLayout(U32.withName("pasid")).withName("pasid_detach"),
                    structLayout(U32.withName("pasid"), U32.withName("hwpt_id")).withName("pasid_check"),
                    structLayout(U32.withName("length"), U32.withName("open_flags")).withName("dmabuf_get"),
                    structLayout(U32.withName("dmabuf_fd"), U32.withName("revoked")).withName("dmabuf_revoke")).withName("union"),
            U32.withName("last"),
            MemoryLayout.paddingLayout(4));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "last");
    private static final long OP = Layouts.offset(LAYOUT, "op");
    private static final long ID = Layouts.offset(LAYOUT, "id");
    private static final long ADD_RESERVED_START = Layouts.offset(LAYOUT, "union", "add_reserved", "start");
    private static final long ADD_RESERVED_LENGTH = Layouts.offset(LAYOUT, "union", "add_reserved", "length");
    private static final long MOCK_DOMAIN_OUT_STDEV_ID = Layouts.offset(LAYOUT, "union", "mock_domain", "out_stdev_id");
    private static final long MOCK_DOMAIN_OUT_HWPT_ID = Layouts.offset(LAYOUT, "union", "mock_domain", "out_hwpt_id");
    private static final long MOCK_DOMAIN_OUT_IDEV_ID = Layouts.offset(LAYOUT, "union", "mock_domain", "out_idev_id");
    private static final long MOCK_DOMAIN_FLAGS_DEV_FLAGS = Layouts.offset(LAYOUT, "union", "mock_domain_flags", "dev_flags");
    private static final long MOCK_DOMAIN_REPLACE_PT_ID = Layouts.offset(LAYOUT, "union", "mock_domain_replace", "pt_id");
    private static final long CHECK_MAP_IOVA = Layouts.offset(LAYOUT, "union", "check_map", "iova");
    private static final long CHECK_MAP_LENGTH = Layouts.offset(LAYOUT, "union", "check_map", "length");
    private static final long CHECK_MAP_UPTR = Layouts.offset(LAYOUT, "union", "check_map", "uptr");
    private static final long CHECK_REFS_LENGTH = Layouts.offset(LAYOUT, "union", "check_refs", "length");
    private static final long CHECK_REFS_UPTR = Layouts.offset(LAYOUT, "union", "check_refs", "uptr");
    private static final long CHECK_REFS_REFS = Layouts.offset(LAYOUT, "union", "check_refs", "refs");
    private static final long CREATE_ACCESS_OUT_ACCESS_FD = Layouts.offset(LAYOUT, "union", "create_access", "out_access_fd");
    private static final long CREATE_ACCESS_FLAGS = Layouts.offset(LAYOUT, "union", "create_access", "flags");
    private static final long DESTROY_ACCESS_PAGES_ACCESS_PAGES_ID = Layouts.offset(LAYOUT, "union", "destroy_access_pages", "access_pages_id");
    private static final long ACCESS_PAGES_FLAGS = Layouts.offset(LAYOUT, "union", "access_pages", "flags");
    private static final long ACCESS_PAGES_OUT_ACCESS_PAGES_ID = Layouts.offset(LAYOUT, "union", "access_pages", "out_access_pages_id");
    private static final long ACCESS_PAGES_IOVA = Layouts.offset(LAYOUT, "union", "access_pages", "iova");
    private static final long ACCESS_PAGES_LENGTH = Layouts.offset(LAYOUT, "union", "access_pages", "length");
    private static final long ACCESS_PAGES_UPTR = Layouts.offset(LAYOUT, "union", "access_pages", "uptr");
    private static final long ACCESS_RW_IOVA = Layouts.offset(LAYOUT, "union", "access_rw", "iova");
    private static final long ACCESS_RW_LENGTH = Layouts.offset(LAYOUT, "union", "access_rw", "length");
    private static final long ACCESS_RW_UPTR = Layouts.offset(LAYOUT, "union", "access_rw", "uptr");
    private static final long ACCESS_RW_FLAGS = Layouts.offset(LAYOUT, "union", "access_rw", "flags");
    private static final long MEMORY_LIMIT_LIMIT = Layouts.offset(LAYOUT, "union", "memory_limit", "limit");
    private static final long ACCESS_REPLACE_IOAS_IOAS_ID = Layouts.offset(LAYOUT, "union", "access_replace_ioas", "ioas_id");
    private static final long DIRTY_FLAGS = Layouts.offset(LAYOUT, "union", "dirty", "flags");
    private static final long DIRTY_IOVA = Layouts.offset(LAYOUT, "union", "dirty", "iova");
    private static final long DIRTY_LENGTH = Layouts.offset(LAYOUT, "union", "dirty", "length");
    private static final long DIRTY_PAGE_SIZE = Layouts.offset(LAYOUT, "union", "dirty", "page_size");
    private static final long DIRTY_UPTR = Layouts.offset(LAYOUT, "union", "dirty", "uptr");
    private static final long DIRTY_OUT_NR_DIRTY = Layouts.offset(LAYOUT, "union", "dirty", "out_nr_dirty");
    private static final long CHECK_IOTLB_ID = Layouts.offset(LAYOUT, "union", "check_iotlb", "id");
    private static final long CHECK_IOTLB_IOTLB = Layouts.offset(LAYOUT, "union", "check_iotlb", "iotlb");
    private static final long TRIGGER_IOPF_DEV_ID = Layouts.offset(LAYOUT, "union", "trigger_iopf", "dev_id");
    private static final long TRIGGER_IOPF_PASID = Layouts.offset(LAYOUT, "union", "trigger_iopf", "pasid");
    private static final long TRIGGER_IOPF_GRPID = Layouts.offset(LAYOUT, "union", "trigger_iopf", "grpid");
    private static final long TRIGGER_IOPF_PERM = Layouts.offset(LAYOUT, "union", "trigger_iopf", "perm");
    private static final long TRIGGER_IOPF_ADDR = Layouts.offset(LAYOUT, "union", "trigger_iopf", "addr");
    private static final long CHECK_DEV_CACHE_ID = Layouts.offset(LAYOUT, "union", "check_dev_cache", "id");
    private static final long CHECK_DEV_CACHE_CACHE = Layouts.offset(LAYOUT, "union", "check_dev_cache", "cache");
    private static final long TRIGGER_VEVENT_DEV_ID = Layouts.offset(LAYOUT, "union", "trigger_vevent", "dev_id");
    private static final long PASID_ATTACH_PASID = Layouts.offset(LAYOUT, "union", "pasid_attach", "pasid");
    private static final long PASID_ATTACH_PT_ID = Layouts.offset(LAYOUT, "union", "pasid_attach", "pt_id");
    private static final long PASID_DETACH_PASID = Layouts.offset(LAYOUT, "union", "pasid_detach", "pasid");
    private static final long PASID_CHECK_PASID = Layouts.offset(LAYOUT, "union", "pasid_check", "pasid");
    private static final long PASID_CHECK_HWPT_ID = Layouts.offset(LAYOUT, "union", "pasid_check", "hwpt_id");
    private static final long DMABUF_GET_LENGTH = Layouts.offset(LAYOUT, "union", "dmabuf_get", "length");
    private static final long DMABUF_GET_OPEN_FLAGS = Layouts.offset(LAYOUT, "union", "dmabuf_get", "open_flags");
    private static final long DMABUF_REVOKE_DMABUF_FD = Layouts.offset(LAYOUT, "union", "dmabuf_revoke", "dmabuf_fd");
    private static final long DMABUF_REVOKE_REVOKED = Layouts.offset(LAYOUT, "union", "dmabuf_revoke", "revoked");

    private MemorySegment segment;
    private long base;

    public TestCmdStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    /** {@return the operation, an {@code OP_*} value} */
    public int op() {
        return segment.get(U32, base + OP);
    }

    /** {@return the operation's object: an IOAS, HWPT, selftest object or access fd, by operation} */
    public int id() {
        return segment.get(U32, base + ID);
    }

    public long addReservedStart() {
        return segment.get(U64, base + ADD_RESERVED_START);
    }

    public long addReservedLengthBytes() {
        return segment.get(U64, base + ADD_RESERVED_LENGTH);
    }

    public int mockDomainOutStdevId() {
        return segment.get(U32, base + MOCK_DOMAIN_OUT_STDEV_ID);
    }

    public TestCmdStruct mockDomainOutStdevId(int value) {
        segment.set(U32, base + MOCK_DOMAIN_OUT_STDEV_ID, value);
        return this;
    }

    public int mockDomainOutHwptId() {
        return segment.get(U32, base + MOCK_DOMAIN_OUT_HWPT_ID);
    }

    public TestCmdStruct mockDomainOutHwptId(int value) {
        segment.set(U32, base + MOCK_DOMAIN_OUT_HWPT_ID, value);
        return this;
    }

    public int mockDomainOutIdevId() {
        return segment.get(U32, base + MOCK_DOMAIN_OUT_IDEV_ID);
    }

    public TestCmdStruct mockDomainOutIdevId(int value) {
        segment.set(U32, base + MOCK_DOMAIN_OUT_IDEV_ID, value);
        return this;
    }

    public int mockDomainFlagsDevFlags() {
        return segment.get(U32, base + MOCK_DOMAIN_FLAGS_DEV_FLAGS);
    }

    /** {@return in: the IOAS or HWPT to attach; out: the HWPT attached} */
    public int mockDomainReplacePtId() {
        return segment.get(U32, base + MOCK_DOMAIN_REPLACE_PT_ID);
    }

    public TestCmdStruct mockDomainReplacePtId(int value) {
        segment.set(U32, base + MOCK_DOMAIN_REPLACE_PT_ID, value);
        return this;
    }

    public long checkMapIova() {
        return segment.get(U64, base + CHECK_MAP_IOVA);
    }

    public long checkMapLengthBytes() {
        return segment.get(U64, base + CHECK_MAP_LENGTH);
    }

    public long checkMapUptr() {
        return segment.get(U64, base + CHECK_MAP_UPTR);
    }

    public long checkRefsLengthBytes() {
        return segment.get(U64, base + CHECK_REFS_LENGTH);
    }

    public long checkRefsUptr() {
        return segment.get(U64, base + CHECK_REFS_UPTR);
    }

    public int checkRefsRefs() {
        return segment.get(U32, base + CHECK_REFS_REFS);
    }

    public int createAccessOutAccessFd() {
        return segment.get(U32, base + CREATE_ACCESS_OUT_ACCESS_FD);
    }

    public TestCmdStruct createAccessOutAccessFd(int value) {
        segment.set(U32, base + CREATE_ACCESS_OUT_ACCESS_FD, value);
        return this;
    }

    public int createAccessFlags() {
        return segment.get(U32, base + CREATE_ACCESS_FLAGS);
    }

    public int destroyAccessPagesId() {
        return segment.get(U32, base + DESTROY_ACCESS_PAGES_ACCESS_PAGES_ID);
    }

    public int accessPagesFlags() {
        return segment.get(U32, base + ACCESS_PAGES_FLAGS);
    }

    public int accessPagesOutAccessPagesId() {
        return segment.get(U32, base + ACCESS_PAGES_OUT_ACCESS_PAGES_ID);
    }

    public TestCmdStruct accessPagesOutAccessPagesId(int value) {
        segment.set(U32, base + ACCESS_PAGES_OUT_ACCESS_PAGES_ID, value);
        return this;
    }

    public long accessPagesIova() {
        return segment.get(U64, base + ACCESS_PAGES_IOVA);
    }

    public long accessPagesLengthBytes() {
        return segment.get(U64, base + ACCESS_PAGES_LENGTH);
    }

    public long accessPagesUptr() {
        return segment.get(U64, base + ACCESS_PAGES_UPTR);
    }

    public long accessRwIova() {
        return segment.get(U64, base + ACCESS_RW_IOVA);
    }

    public long accessRwLengthBytes() {
        return segment.get(U64, base + ACCESS_RW_LENGTH);
    }

    public long accessRwUptr() {
        return segment.get(U64, base + ACCESS_RW_UPTR);
    }

    public int accessRwFlags() {
        return segment.get(U32, base + ACCESS_RW_FLAGS);
    }

    public long memoryLimitBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + MEMORY_LIMIT_LIMIT));
    }

    public int accessReplaceIoasIoasId() {
        return segment.get(U32, base + ACCESS_REPLACE_IOAS_IOAS_ID);
    }

    public int dirtyFlags() {
        return segment.get(U32, base + DIRTY_FLAGS);
    }

    public long dirtyIova() {
        return segment.get(U64, base + DIRTY_IOVA);
    }

    public long dirtyLengthBytes() {
        return segment.get(U64, base + DIRTY_LENGTH);
    }

    public long dirtyPageSizeBytes() {
        return segment.get(U64, base + DIRTY_PAGE_SIZE);
    }

    public long dirtyUptr() {
        return segment.get(U64, base + DIRTY_UPTR);
    }

    public long dirtyOutNrDirty() {
        return segment.get(U64, base + DIRTY_OUT_NR_DIRTY);
    }

    public TestCmdStruct dirtyOutNrDirty(long value) {
        segment.set(U64, base + DIRTY_OUT_NR_DIRTY, value);
        return this;
    }

    /** {@return the IOTLB slot, 0 to 3} */
    public int checkIotlbId() {
        return segment.get(U32, base + CHECK_IOTLB_ID);
    }

    public int checkIotlbIotlb() {
        return segment.get(U32, base + CHECK_IOTLB_IOTLB);
    }

    public int triggerIopfDevId() {
        return segment.get(U32, base + TRIGGER_IOPF_DEV_ID);
    }

    public int triggerIopfPasid() {
        return segment.get(U32, base + TRIGGER_IOPF_PASID);
    }

    public int triggerIopfGrpid() {
        return segment.get(U32, base + TRIGGER_IOPF_GRPID);
    }

    public int triggerIopfPerm() {
        return segment.get(U32, base + TRIGGER_IOPF_PERM);
    }

    public long triggerIopfAddr() {
        return segment.get(U64, base + TRIGGER_IOPF_ADDR);
    }

    /** {@return the cache slot, 0 to 3} */
    public int checkDevCacheId() {
        return segment.get(U32, base + CHECK_DEV_CACHE_ID);
    }

    public int checkDevCacheCache() {
        return segment.get(U32, base + CHECK_DEV_CACHE_CACHE);
    }

    public int triggerVeventDevId() {
        return segment.get(U32, base + TRIGGER_VEVENT_DEV_ID);
    }

    public int pasidAttachPasid() {
        return segment.get(U32, base + PASID_ATTACH_PASID);
    }

    /** {@return in: the IOAS or HWPT to attach; out: the HWPT attached} */
    public int pasidAttachPtId() {
        return segment.get(U32, base + PASID_ATTACH_PT_ID);
    }

    public TestCmdStruct pasidAttachPtId(int value) {
        segment.set(U32, base + PASID_ATTACH_PT_ID, value);
        return this;
    }

    public int pasidDetachPasid() {
        return segment.get(U32, base + PASID_DETACH_PASID);
    }

    public int pasidCheckPasid() {
        return segment.get(U32, base + PASID_CHECK_PASID);
    }

    public int pasidCheckHwptId() {
        return segment.get(U32, base + PASID_CHECK_HWPT_ID);
    }

    public long dmabufGetLengthBytes() {
        return Integer.toUnsignedLong(segment.get(U32, base + DMABUF_GET_LENGTH));
    }

    public int dmabufGetOpenFlags() {
        return segment.get(U32, base + DMABUF_GET_OPEN_FLAGS);
    }

    public int dmabufRevokeFd() {
        return segment.get(U32, base + DMABUF_REVOKE_DMABUF_FD);
    }

    public int dmabufRevokeRevoked() {
        return segment.get(U32, base + DMABUF_REVOKE_REVOKED);
    }
}
