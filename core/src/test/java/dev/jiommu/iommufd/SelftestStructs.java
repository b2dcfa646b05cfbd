package dev.jiommu.iommufd;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The little-endian structs ported kernel cases hand to the typed API as driver payloads, or read
 * from and write to derived files: the selftest's own (drivers/iommu/iommufd/iommufd_test.h) and
 * the uAPI records of the fault and vEVENTQ files (iommufd-uapi.md §5, §8.2).
 */
final class SelftestStructs {
    /** sizeof(struct iommu_hwpt_pgfault). */
    static final int PGFAULT_BYTES = 40;
    /** sizeof(struct iommufd_vevent_header). */
    static final int VEVENT_HEADER_BYTES = 8;
    /** sizeof(struct iommu_viommu_event_selftest): {u32 virt_id}. */
    static final int VEVENT_SELFTEST_BYTES = 4;
    /** IOMMU_VEVENTQ_FLAG_LOST_EVENTS. */
    static final int VEVENTQ_FLAG_LOST_EVENTS = 1;

    private SelftestStructs() {
    }

    private static ByteBuffer le(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static ByteBuffer le(byte[] bytes) {
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** struct iommu_hwpt_selftest {u32 iotlb; u32 pagetable_type;} with the default page table. */
    static byte[] hwptSelftest(int iotlb) {
        return le(8).putInt(iotlb).putInt(0).array();
    }

    /** struct iommu_viommu_selftest {u32 in_data; u32 out_data; u64 out_mmap_offset; u64 out_mmap_length;}, outputs zero. */
    static byte[] viommuSelftest(int inData) {
        return le(24).putInt(inData).array();
    }

    /** What the mock vIOMMU wrote back into struct iommu_viommu_selftest. */
    record ViommuSelftestOut(int inData, int outData, long mmapOffset, long mmapLength) {
        static ViommuSelftestOut of(byte[] bytes) {
            ByteBuffer b = le(bytes);
            return new ViommuSelftestOut(b.getInt(0), b.getInt(4), b.getLong(8), b.getLong(16));
        }
    }

    /** struct iommu_hwpt_page_response {u32 cookie; u32 code;}. */
    static byte[] pageResponse(int cookie, int code) {
        return le(8).putInt(cookie).putInt(code).array();
    }

    /** struct iommu_hwpt_pgfault, as read from a fault file. */
    record Pgfault(int flags, int devId, int pasid, int grpid, int perm, long addr, int length, int cookie) {
        static Pgfault of(byte[] bytes) {
            ByteBuffer b = le(bytes);
            return new Pgfault(b.getInt(0), b.getInt(4), b.getInt(8), b.getInt(12), b.getInt(16), b.getLong(24),
                    b.getInt(32), b.getInt(36));
        }
    }

    /** {@return the u32 at {@code offset} of {@code bytes}, little-endian} */
    static int u32(byte[] bytes, int offset) {
        return le(bytes).getInt(offset);
    }

    /**
     * A C array of invalidation requests (the kernel cases' {@code inv_reqs[]}): {@code count}
     * entries of {@code fields} u32s each, zeroed at first and edited in place between calls,
     * as the cases do.
     */
    static final class InvReqs {
        private final int fields;
        private final int[] values;

        InvReqs(int count, int fields) {
            this.fields = fields;
            this.values = new int[count * fields];
        }

        /** Sets entry {@code index}'s fields, in declaration order. */
        InvReqs set(int index, int... fieldValues) {
            System.arraycopy(fieldValues, 0, values, index * fields, fieldValues.length);
            return this;
        }

        /** {@return sizeof one entry} */
        int entryLen() {
            return fields * 4;
        }

        /**
         * {@return the array's bytes, zero-padded to at least {@code minLength}}: a call may claim
         * more bytes than the array holds (an oversized entry_len), where the kernel would read
         * whatever memory follows the array.
         */
        byte[] bytes(long minLength) {
            ByteBuffer b = le((int) Math.max(values.length * 4L, minLength));
            for (int v : values) {
                b.putInt(v);
            }
            return b.array();
        }
    }
}
