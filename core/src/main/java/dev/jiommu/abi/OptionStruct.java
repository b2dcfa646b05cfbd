package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U16;
import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_option} (IOMMU_OPTION, 24 bytes); only {@code val64} is ever written back. */
public final class OptionStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("option_id"),
            U16.withName("op"),
            U16.withName("__reserved"),
            U32.withName("object_id"),
            U64.withName("val64"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "val64");
    private static final long OPTION_ID = Layouts.offset(LAYOUT, "option_id");
    private static final long OP = Layouts.offset(LAYOUT, "op");
    private static final long RESERVED = Layouts.offset(LAYOUT, "__reserved");
    private static final long OBJECT_ID = Layouts.offset(LAYOUT, "object_id");
    private static final long VAL64 = Layouts.offset(LAYOUT, "val64");
    /** Where {@code val64} sits: the only bytes OPTION writes back. */
    static final long VAL64_OFFSET = VAL64;

    private MemorySegment segment;
    private long base;

    public OptionStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int optionId() {
        return segment.get(U32, base + OPTION_ID);
    }

    public int op() {
        return Short.toUnsignedInt(segment.get(U16, base + OP));
    }

    public int reserved() {
        return Short.toUnsignedInt(segment.get(U16, base + RESERVED));
    }

    public int objectId() {
        return segment.get(U32, base + OBJECT_ID);
    }

    public long val64() {
        return segment.get(U64, base + VAL64);
    }

    public OptionStruct val64(long value) {
        segment.set(U64, base + VAL64, value);
        return this;
    }
}
