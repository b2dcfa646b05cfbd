package dev.jiommu.hw.vtd.spec;

/**
 * VT-d root entry, 16 bytes, 256 per root table indexed by bus (VT-d 4.1 §9.1, §9.2).
 * Legacy: lo P 0, CTP [63:12]; hi reserved. Scalable: lo = lower context table (devfn 0–127),
 * hi = upper context table (devfn 128–255), each P 0 and pointer [63:12].
 */
public record RootEntry(long lo, long hi) {
    public static final int SIZE_BYTES = 16;
    public static final long P = 1L;
    public static final long ADDR_MASK = 0xffff_ffff_ffff_f000L;
    /** Reserved bits of a legacy lo qword: [11:1]. */
    public static final long LEGACY_LO_RESERVED = 0xffeL;

    public static RootEntry legacy(long contextTable) {
        return new RootEntry((contextTable & ADDR_MASK) | P, 0);
    }

    public static RootEntry scalable(long lowerTable, long upperTable) {
        return new RootEntry(lowerTable == 0 ? 0 : (lowerTable & ADDR_MASK) | P, upperTable == 0 ? 0 : (upperTable & ADDR_MASK) | P);
    }

    public boolean present() {
        return present(lo);
    }

    public long contextTable() {
        return lo & ADDR_MASK;
    }

    public static boolean present(long qword) {
        return (qword & P) != 0;
    }

    public static long pointer(long qword) {
        return qword & ADDR_MASK;
    }
}
