package dev.jiommu.hw.vtd.spec;

/**
 * A VT-d page request descriptor in the page request queue, 32 bytes (VT-d 4.1 §7.5.1; Linux
 * prq.c). q0: type [7:0], PASID present 8, private data present 9, RID [31:16], PASID [51:32],
 * ER 52, PM 53. q1: RD 0, WR 1, LPIG 2, PRG index [11:3], ADDR [63:12]. q2, q3 private data.
 */
public record PageRequest(long q0, long q1) {
    public static final int SIZE_BYTES = 32;
    /** Type of a page request descriptor. */
    public static final int TYPE = 1;
    public static final long PASID_PRESENT = 1L << 8;
    public static final long EXEC = 1L << 52;
    public static final long PRIV = 1L << 53;
    public static final long RD = 1L;
    public static final long WR = 1L << 1;
    public static final long LPIG = 1L << 2;

    public static PageRequest of(int rid, int pasid, long address, boolean read, boolean write, boolean last, int prgIndex) {
        long q0 = TYPE | ((long) (rid & 0xffff) << 16);
        if (pasid >= 0) {
            q0 |= PASID_PRESENT | ((long) (pasid & 0xfffff) << 32);
        }
        long q1 = (read ? RD : 0) | (write ? WR : 0) | (last ? LPIG : 0) | ((long) (prgIndex & 0x1ff) << 3) | (address & ~0xfffL);
        return new PageRequest(q0, q1);
    }

    public int rid() {
        return (int) (q0 >>> 16) & 0xffff;
    }

    public boolean pasidPresent() {
        return (q0 & PASID_PRESENT) != 0;
    }

    public int pasid() {
        return (int) (q0 >>> 32) & 0xfffff;
    }

    public boolean read() {
        return (q1 & RD) != 0;
    }

    public boolean write() {
        return (q1 & WR) != 0;
    }

    public boolean lastInGroup() {
        return (q1 & LPIG) != 0;
    }

    public int prgIndex() {
        return (int) (q1 >>> 3) & 0x1ff;
    }

    public long address() {
        return q1 & ~0xfffL;
    }

    public boolean privileged() {
        return (q0 & PRIV) != 0;
    }

    public boolean exec() {
        return (q0 & EXEC) != 0;
    }
}
