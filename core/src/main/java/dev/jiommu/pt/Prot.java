package dev.jiommu.pt;

/**
 * Mapping protection flags, with the values of the kernel's {@code IOMMU_READ} … {@code IOMMU_PRIV}.
 *
 * <p>A plain {@code int} set so the map path carries no objects.
 */
public final class Prot {
    public static final int READ = 1;
    public static final int WRITE = 1 << 1;
    /** Cache-coherent (snooped) DMA. */
    public static final int CACHE = 1 << 2;
    public static final int NOEXEC = 1 << 3;
    public static final int MMIO = 1 << 4;
    /** Privileged (supervisor) access only. */
    public static final int PRIV = 1 << 5;

    public static final int READ_WRITE = READ | WRITE;

    private Prot() {
    }

    /** {@return a short form such as "rw" or "r-x"} */
    public static String describe(int prot) {
        return ((prot & READ) != 0 ? "r" : "-") + ((prot & WRITE) != 0 ? "w" : "-") + ((prot & NOEXEC) != 0 ? "-" : "x")
                + ((prot & PRIV) != 0 ? " priv" : "");
    }
}
