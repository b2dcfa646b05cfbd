package dev.jiommu.abi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static java.lang.foreign.MemoryLayout.structLayout;

/** {@code struct iommu_ioas_map_file} (IOMMU_IOAS_MAP_FILE, 40 bytes). */
public final class IoasMapFileStruct {
    public static final StructLayout LAYOUT = structLayout(
            U32.withName("size"),
            U32.withName("flags"),
            U32.withName("ioas_id"),
            U32.withName("fd"),
            U64.withName("start"),
            U64.withName("length"),
            U64.withName("iova"));
    public static final long SIZE_BYTES = LAYOUT.byteSize();
    public static final long MIN_SIZE_BYTES = Layouts.endOffset(LAYOUT, "iova");
    private static final long FLAGS = Layouts.offset(LAYOUT, "flags");
    private static final long IOAS_ID = Layouts.offset(LAYOUT, "ioas_id");
    private static final long FD = Layouts.offset(LAYOUT, "fd");
    private static final long START = Layouts.offset(LAYOUT, "start");
    private static final long LENGTH = Layouts.offset(LAYOUT, "length");
    private static final long IOVA = Layouts.offset(LAYOUT, "iova");

    private MemorySegment segment;
    private long base;

    public IoasMapFileStruct wrap(MemorySegment segment, long base) {
        this.segment = segment;
        this.base = base;
        return this;
    }

    public int flags() {
        return segment.get(U32, base + FLAGS);
    }

    public int ioasId() {
        return segment.get(U32, base + IOAS_ID);
    }

    /** {@return the file descriptor (signed): a memfd or a dma-buf} */
    public int fd() {
        return segment.get(U32, base + FD);
    }

    /** {@return the byte offset into the file} */
    public long start() {
        return segment.get(U64, base + START);
    }

    public long lengthBytes() {
        return segment.get(U64, base + LENGTH);
    }

    public long iova() {
        return segment.get(U64, base + IOVA);
    }

    public IoasMapFileStruct iova(long value) {
        segment.set(U64, base + IOVA, value);
        return this;
    }
}
