package dev.jiommu.pt;

/**
 * What a DMA request asks for, as flag bits of an {@code int}: the hardware walker checks these
 * against the permissions granted along the walk ({@link PageTableFormat#PERM_READ} …).
 */
public final class Access {
    public static final int READ = 1;
    public static final int WRITE = 1 << 1;
    /** Instruction fetch (execute). */
    public static final int EXEC = 1 << 2;
    /** A privileged (supervisor) request; without it the request needs user permission at every level. */
    public static final int PRIV = 1 << 3;

    private Access() {
    }

    /** {@return the permissions a request needs: R/W/X as asked, plus USER unless privileged} */
    public static int requiredPerms(int access) {
        return (access & (READ | WRITE | EXEC)) | ((access & PRIV) == 0 ? PageTableFormat.PERM_USER : 0);
    }

    /** {@return "R", "W", "RX", … for messages and traces} */
    public static String describe(int access) {
        StringBuilder sb = new StringBuilder();
        if ((access & READ) != 0) {
            sb.append('R');
        }
        if ((access & WRITE) != 0) {
            sb.append('W');
        }
        if ((access & EXEC) != 0) {
            sb.append('X');
        }
        if ((access & PRIV) != 0) {
            sb.append('P');
        }
        return sb.isEmpty() ? "-" : sb.toString();
    }
}
