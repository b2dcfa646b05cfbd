package dev.jiommu.hw.vtd.spec;

/**
 * VT-d legacy-mode context entry, 16 bytes, 256 per context table indexed by devfn (VT-d 4.1 §9.3).
 * lo: P 0, FPD 1, TT [3:2], SLPTPTR [63:12]. hi: AW [2:0], AVAIL [6:3], DID [23:8].
 */
public record ContextEntry(long lo, long hi) {
    public static final int SIZE_BYTES = 16;
    public static final long P = 1L;
    public static final long FPD = 1L << 1;
    /** TT: untranslated requests use the second-level table; translation requests blocked. */
    public static final int TT_UNTRANSLATED = 0;
    /** TT: as {@link #TT_UNTRANSLATED}, with device-TLB (ATS) translation requests allowed. */
    public static final int TT_DEVICE_TLB = 1;
    /** TT: pass-through (needs ECAP.PT). */
    public static final int TT_PASS_THROUGH = 2;
    public static final long ADDR_MASK = 0xffff_ffff_ffff_f000L;
    /** lo bits [11:4] are reserved. */
    public static final long LO_RESERVED = 0xff0L;
    /** hi bits [63:24] and bit 7 are reserved. */
    public static final long HI_RESERVED = 0xffff_ffff_ff00_0080L;

    public static ContextEntry of(long slptptr, int tt, int aw, int did) {
        return new ContextEntry((slptptr & ADDR_MASK) | ((long) (tt & 3) << 2) | P, (aw & 7) | ((long) (did & 0xffff) << 8));
    }

    public boolean present() {
        return (lo & P) != 0;
    }

    public boolean faultProcessingDisable() {
        return (lo & FPD) != 0;
    }

    public int translationType() {
        return (int) (lo >>> 2) & 3;
    }

    public long slptptr() {
        return lo & ADDR_MASK;
    }

    /** {@return the AW field: 1 = 39-bit, 2 = 48-bit, 3 = 57-bit} */
    public int aw() {
        return (int) (hi & 7);
    }

    public int did() {
        return (int) (hi >>> 8) & 0xffff;
    }

    public boolean reservedBitsSet() {
        return (lo & LO_RESERVED) != 0 || (hi & HI_RESERVED) != 0;
    }
}
