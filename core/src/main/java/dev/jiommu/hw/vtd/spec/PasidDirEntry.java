package dev.jiommu.hw.vtd.spec;

/** VT-d PASID directory entry, 8 bytes, indexed by PASID[19:6] (VT-d 4.1 §9.5): P 0, FPD 1, PTP [63:12]. */
public record PasidDirEntry(long raw) {
    public static final int SIZE_BYTES = 8;
    public static final long P = 1L;
    public static final long FPD = 1L << 1;
    public static final long ADDR_MASK = 0xffff_ffff_ffff_f000L;

    public static PasidDirEntry of(long pasidTable) {
        return new PasidDirEntry((pasidTable & ADDR_MASK) | P);
    }

    public boolean present() {
        return (raw & P) != 0;
    }

    public boolean faultProcessingDisable() {
        return (raw & FPD) != 0;
    }

    public long pasidTable() {
        return raw & ADDR_MASK;
    }

    /** {@return the byte offset of {@code pasid}'s directory entry} */
    public static long offset(int pasid) {
        return (long) (pasid >>> 6) * SIZE_BYTES;
    }
}
