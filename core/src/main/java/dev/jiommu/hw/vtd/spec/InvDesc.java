package dev.jiommu.hw.vtd.spec;

/**
 * A VT-d invalidation-queue descriptor: 128 bits (q0, q1), or 256 with IQA.DW, whose upper half is
 * zero for every type this model knows (VT-d 4.1 §6.5.2; iommu-hardware.md §3.2). The type is
 * bits [3:0] with bits [11:9] as type[6:4]. Field accessors are named per descriptor type.
 */
public record InvDesc(long q0, long q1) {
    public static final int TYPE_CONTEXT = 1;
    public static final int TYPE_IOTLB = 2;
    public static final int TYPE_DEVICE_TLB = 3;
    public static final int TYPE_IEC = 4;
    public static final int TYPE_WAIT = 5;
    public static final int TYPE_PASID_IOTLB = 6;
    public static final int TYPE_PASID_CACHE = 7;
    public static final int TYPE_PASID_DEVICE_TLB = 8;
    public static final int TYPE_PAGE_GROUP_RESPONSE = 9;

    /** Granularity (G, bits [5:4]) of context-cache descriptors and of IOTLB descriptors. */
    public static final int G_GLOBAL = 1;
    public static final int G_DOMAIN = 2;
    public static final int G_DEVICE_OR_PAGE = 3;
    /** PASID-based IOTLB granularity: all of a PASID (2) or page-selective within it (3). */
    public static final int PG_PASID = 2;
    public static final int PG_PAGE = 3;
    /** PASID-cache granularity: all PASIDs of a DID (0), PASID-selective (1), global (3). */
    public static final int PCG_DOMAIN = 0;
    public static final int PCG_PASID = 1;
    public static final int PCG_GLOBAL = 3;

    public static final long WAIT_IF = 1L << 4;
    public static final long WAIT_SW = 1L << 5;
    public static final long WAIT_FN = 1L << 6;
    public static final long WAIT_PD = 1L << 7;

    public static final int RESPONSE_SUCCESS = 0;
    public static final int RESPONSE_INVALID = 1;
    public static final int RESPONSE_FAILURE = 0xf;

    public int type() {
        return type(q0);
    }

    public static int type(long q0) {
        return (int) (q0 & 0xf) | (int) ((q0 >>> 5) & 0x70);
    }

    private static long typeBits(int type) {
        return (type & 0xf) | ((long) (type & 0x70) << 5);
    }

    /** {@return G, bits [5:4]} */
    public int granularity() {
        return (int) (q0 >>> 4) & 3;
    }

    /** {@return DID, bits [31:16] (context, IOTLB, PASID-IOTLB, PASID-cache)} */
    public int did() {
        return (int) (q0 >>> 16) & 0xffff;
    }

    /** {@return the source id of a context-cache (bits [47:32]) or device-TLB descriptor (bits [47:32])} */
    public int sid() {
        return (int) (q0 >>> 32) & 0xffff;
    }

    /** {@return PASID, bits [51:32] (PASID-IOTLB, PASID-cache, PASID device-TLB, page-group response)} */
    public int pasid() {
        return (int) (q0 >>> 32) & 0xfffff;
    }

    /** {@return q1 AM [5:0]: the range is 2^AM pages} */
    public int addressMask() {
        return (int) (q1 & 0x3f);
    }

    /** {@return q1 IH, bit 6: only leaf entries changed} */
    public boolean invalidationHint() {
        return (q1 & (1L << 6)) != 0;
    }

    public long address() {
        return q1 & ~0xfffL;
    }

    /** {@return the wait descriptor's status data, q0 [63:32]} */
    public int statusData() {
        return (int) (q0 >>> 32);
    }

    /** {@return the wait descriptor's status address, q1 [63:2]} */
    public long statusAddress() {
        return q1 & ~3L;
    }

    /** {@return the SID of a PASID-based device-TLB descriptor, q0 [31:16]} */
    public int pasidDeviceTlbSid() {
        return (int) (q0 >>> 16) & 0xffff;
    }

    /** {@return the device-TLB size bit S (type 3: q1 bit 0, type 8: q1 bit 11)} */
    public boolean sizeBit() {
        return type() == TYPE_DEVICE_TLB ? (q1 & 1) != 0 : (q1 & (1L << 11)) != 0;
    }

    /** {@return for type 8, q1 bit 0: all PASIDs} */
    public boolean globalPasids() {
        return (q1 & 1) != 0;
    }

    /** {@return the page-group response's RID, q0 [31:16]} */
    public int responseRid() {
        return (int) (q0 >>> 16) & 0xffff;
    }

    public boolean responsePasidPresent() {
        return (q0 & (1L << 4)) != 0;
    }

    /** {@return the response code, q0 [15:12]} */
    public int responseCode() {
        return (int) (q0 >>> 12) & 0xf;
    }

    /** {@return the PRG index, q1 [11:3]} */
    public int prgIndex() {
        return (int) (q1 >>> 3) & 0x1ff;
    }

    // ---- builders (the driver's side) ----

    public static InvDesc contextCache(int granularity, int did, int sid, int fm) {
        return new InvDesc(typeBits(TYPE_CONTEXT) | ((long) granularity << 4) | ((long) did << 16) | ((long) sid << 32) | ((long) (fm & 3) << 48), 0);
    }

    public static InvDesc iotlb(int granularity, int did, long address, int am, boolean ih) {
        return new InvDesc(typeBits(TYPE_IOTLB) | ((long) granularity << 4) | (1L << 6) | (1L << 7) | ((long) did << 16),
                (address & ~0xfffL) | (ih ? 1L << 6 : 0) | (am & 0x3f));
    }

    public static InvDesc pasidIotlb(int granularity, int did, int pasid, long address, int am, boolean ih) {
        return new InvDesc(typeBits(TYPE_PASID_IOTLB) | ((long) granularity << 4) | ((long) did << 16) | ((long) (pasid & 0xfffff) << 32),
                (address & ~0xfffL) | (ih ? 1L << 6 : 0) | (am & 0x3f));
    }

    public static InvDesc pasidCache(int granularity, int did, int pasid) {
        return new InvDesc(typeBits(TYPE_PASID_CACHE) | ((long) granularity << 4) | ((long) did << 16) | ((long) (pasid & 0xfffff) << 32), 0);
    }

    /** Device-TLB invalidation of 2^(sizeOrder) pages at {@code address} (S bit and trailing ones encode the size). */
    public static InvDesc deviceTlb(int sid, long address, int sizeOrder) {
        return new InvDesc(typeBits(TYPE_DEVICE_TLB) | ((long) sid << 32), encodeSize(address, sizeOrder, 0));
    }

    public static InvDesc pasidDeviceTlb(int sid, int pasid, boolean allPasids, long address, int sizeOrder) {
        return new InvDesc(typeBits(TYPE_PASID_DEVICE_TLB) | ((long) sid << 16) | ((long) (pasid & 0xfffff) << 32),
                encodeSize(address, sizeOrder, 11) | (allPasids ? 1 : 0));
    }

    public static InvDesc waitStatus(long statusAddress, int statusData, boolean fence, boolean drainPageRequests) {
        return new InvDesc(typeBits(TYPE_WAIT) | WAIT_SW | (fence ? WAIT_FN : 0) | (drainPageRequests ? WAIT_PD : 0)
                | ((long) statusData << 32), statusAddress & ~3L);
    }

    public static InvDesc pageGroupResponse(int rid, boolean pasidPresent, int pasid, int code, int prgIndex) {
        return new InvDesc(typeBits(TYPE_PAGE_GROUP_RESPONSE) | (pasidPresent ? 1L << 4 : 0) | ((long) (code & 0xf) << 12)
                | ((long) rid << 16) | ((long) (pasid & 0xfffff) << 32), ((long) (prgIndex & 0x1ff) << 3));
    }

    /** PCIe ATS invalidation size encoding: S = 1 and ones in ADDR below the top bit of the range. */
    private static long encodeSize(long address, int sizeOrder, int sBit) {
        long addr = address & ~0xfffL;
        if (sizeOrder == 0) {
            return addr;
        }
        long ones = (1L << (sizeOrder - 1 + 12)) - 1;
        return ((addr & ~((1L << (sizeOrder + 12)) - 1)) | (ones & ~0xfffL)) | (1L << sBit);
    }

    /** {@return [first byte, last byte] of a device-TLB descriptor's range, decoded from S and ADDR} */
    public long[] deviceTlbRange() {
        long addr = address();
        if (!sizeBit()) {
            return new long[] {addr, addr + 0xfff};
        }
        int ones = Long.numberOfTrailingZeros(~(addr >>> 12));
        long size = 1L << (ones + 1 + 12);
        long base = addr & -size;
        return new long[] {base, base + size - 1};
    }
}
