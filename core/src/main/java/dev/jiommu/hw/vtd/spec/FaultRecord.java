package dev.jiommu.hw.vtd.spec;

/**
 * A VT-d primary fault recording register (FRCD), 128 bits (VT-d 4.1 §11.4.11.1; iommu-hardware.md
 * §1.1). lo: fault info/address [63:12]. hi: SID [15:0], PRIV 29 (u), EXE 30 (u), PP 31 (PASID
 * present), FR [39:32], PV (PASID value) [59:40], AT [61:60], T 62 (1 = read), F 63 (fault, RW1C).
 */
public record FaultRecord(long lo, long hi) {
    public static final int SIZE_BYTES = 16;
    public static final long F = 1L << 63;
    public static final long T_READ = 1L << 62;
    public static final long PP = 1L << 31;

    public static FaultRecord of(int sid, int pasid, long address, FaultReason reason, boolean read) {
        long hi = (sid & 0xffffL) | ((long) (reason.code() & 0xff) << 32) | (read ? T_READ : 0) | F;
        if (pasid >= 0) {
            hi |= PP | ((long) (pasid & 0xfffff) << 40);
        }
        return new FaultRecord(address & ~0xfffL, hi);
    }

    public boolean fault() {
        return (hi & F) != 0;
    }

    public long address() {
        return lo & ~0xfffL;
    }

    public int sid() {
        return (int) (hi & 0xffff);
    }

    public boolean pasidPresent() {
        return (hi & PP) != 0;
    }

    public int pasid() {
        return (int) (hi >>> 40) & 0xfffff;
    }

    public FaultReason reason() {
        return FaultReason.of((int) (hi >>> 32) & 0xff);
    }

    /** {@return T: true for a read request, false for a write} */
    public boolean read() {
        return (hi & T_READ) != 0;
    }

    @Override
    public String toString() {
        return String.format("FaultRecord[sid=%04x%s addr=0x%x %s %s]", sid(), pasidPresent() ? " pasid=" + pasid() : "", address(),
                read() ? "read" : "write", reason());
    }
}
