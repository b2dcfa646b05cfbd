package dev.jiommu.abi;

import java.lang.foreign.StructLayout;

/**
 * One row of the command table: the full ioctl value (re-checked, so a wrong encoding of a known
 * number is ENOTTY), the struct as this build knows it, the minimum size a caller may pass (the end
 * of the last field of the struct's first version) and the handler.
 */
public record IoctlOp(String name, int cmd, StructLayout layout, long minSizeBytes, Handler handler) {
    /** Runs one decoded command against the typed API. */
    @FunctionalInterface
    public interface Handler {
        /** @return the ioctl's return value (0 for almost every command) */
        long handle(AbiCall call);
    }

    /** {@return a row whose minimum size ends at {@code lastMandatoryField}} */
    public static IoctlOp op(String name, int cmd, StructLayout layout, String lastMandatoryField, Handler handler) {
        return new IoctlOp(name, cmd, layout, Layouts.endOffset(layout, lastMandatoryField), handler);
    }

    public long sizeBytes() {
        return layout.byteSize();
    }
}
