package dev.jiommu.hw.vtd.spec;

/**
 * VT-d Capability register, offset 0x08 (VT-d 4.1 §11.4.2; iommu-hardware.md §5.1). Read-only to
 * software: the unit's fixed description of itself.
 */
public record CapReg(long raw) {
    public static final long CM = 1L << 7;
    public static final long PSI = 1L << 39;
    public static final long SLLPS_2M = 1L << 34;
    public static final long SLLPS_1G = 1L << 35;
    public static final long DWD = 1L << 54;
    public static final long DRD = 1L << 55;
    public static final long FL1GP = 1L << 56;
    public static final long FL5LP = 1L << 60;
    public static final long ESRTPS = 1L << 63;
    /** SAGAW bit (in the SAGAW field) for a 39-bit, 3-level second stage. */
    public static final int SAGAW_39 = 1 << 1;
    public static final int SAGAW_48 = 1 << 2;
    public static final int SAGAW_57 = 1 << 3;

    /** {@return the raw register built from its fields; flags are the single-bit constants above} */
    public static CapReg of(int nd, int sagaw, int mgawBits, int froUnits, int nfrMinus1, int mamv, long flags) {
        long raw = (nd & 7L) | ((sagaw & 0x1fL) << 8) | (((mgawBits - 1) & 0x3fL) << 16) | ((froUnits & 0x3ffL) << 24)
                | ((nfrMinus1 & 0xffL) << 40) | ((mamv & 0x3fL) << 48) | flags;
        return new CapReg(raw);
    }

    /** {@return bits [2:0]: domain IDs = 2^(4 + 2·ND)} */
    public int nd() {
        return (int) (raw & 7);
    }

    public int domainIdBits() {
        return 4 + 2 * nd();
    }

    public boolean cachingMode() {
        return (raw & CM) != 0;
    }

    /** {@return bits [12:8]: supported adjusted guest address widths, bit 1 = 39, 2 = 48, 3 = 57} */
    public int sagaw() {
        return (int) (raw >>> 8) & 0x1f;
    }

    /** {@return bits [21:16] + 1: the maximum guest address width in bits} */
    public int mgawBits() {
        return (int) ((raw >>> 16) & 0x3f) + 1;
    }

    /** {@return bits [33:24] × 16: the byte offset of the first fault recording register} */
    public int faultRecordingOffset() {
        return (int) ((raw >>> 24) & 0x3ff) * 16;
    }

    /** {@return bits [37:34]: second-stage large page support (bit 0 = 2 MiB, 1 = 1 GiB)} */
    public int sllps() {
        return (int) (raw >>> 34) & 0xf;
    }

    public boolean pageSelectiveInvalidation() {
        return (raw & PSI) != 0;
    }

    /** {@return bits [47:40] + 1: the number of fault recording registers} */
    public int faultRecordCount() {
        return (int) ((raw >>> 40) & 0xff) + 1;
    }

    /** {@return bits [53:48]: the largest address mask a page-selective invalidation may use} */
    public int mamv() {
        return (int) (raw >>> 48) & 0x3f;
    }

    public boolean firstStage1GPages() {
        return (raw & FL1GP) != 0;
    }

    public boolean firstStage5Level() {
        return (raw & FL5LP) != 0;
    }

    @Override
    public String toString() {
        return String.format("CapReg[0x%x]", raw);
    }
}
