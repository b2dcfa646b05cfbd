package dev.jiommu.abi;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;

/**
 * The value layouts of the uAPI (little-endian; unaligned, since a caller's struct may sit at any
 * address) and the layout arithmetic every struct class uses, so no offset is typed twice.
 */
public final class Layouts {
    public static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Layouts() {
    }

    /** {@return the byte offset of {@code field} in {@code layout}} */
    public static long offset(StructLayout layout, String field) {
        return layout.byteOffset(groupElement(field));
    }

    /** {@return the offset just past {@code field}: the kernel's offsetofend, a command's minimum size} */
    public static long endOffset(StructLayout layout, String field) {
        MemoryLayout element = layout.select(groupElement(field));
        return offset(layout, field) + element.byteSize();
    }

    /** {@return the absolute byte offset of a nested field, e.g. ("union", "dirty", "iova")} */
    public static long offset(StructLayout layout, String first, String... rest) {
        return layout.byteOffset(path(first, rest));
    }

    private static MemoryLayout.PathElement[] path(String first, String... rest) {
        MemoryLayout.PathElement[] path = new MemoryLayout.PathElement[rest.length + 1];
        path[0] = groupElement(first);
        for (int i = 0; i < rest.length; i++) {
            path[i + 1] = groupElement(rest[i]);
        }
        return path;
    }
}
