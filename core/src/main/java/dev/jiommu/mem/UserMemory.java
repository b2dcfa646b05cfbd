package dev.jiommu.mem;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The address space whose virtual addresses an IOAS_MAP pins: a process's memory as iommufd sees it.
 *
 * <p>Pinning is page-granular ({@link #PAGE_BYTES}, the CPU page) and counted: a page pinned twice
 * needs two unpins. A pinned page keeps its physical address until its last unpin.
 */
public interface UserMemory {
    /** log2 of the CPU page size. */
    int PAGE_SHIFT = 12;
    /** The CPU page size in bytes. */
    long PAGE_BYTES = 1L << PAGE_SHIFT;

    /**
     * Pins every page of [va, va + lengthBytes) and returns their physical addresses, or pins none.
     *
     * @param write whether the pin is for a writable mapping (read-only memory refuses it)
     * @throws dev.jiommu.errno.ErrnoException EINVAL for an empty, misaligned or overflowing range;
     *         EFAULT if a page is not mapped or refuses the requested access
     */
    PinnedPages pin(long va, long lengthBytes, boolean write);

    /** Drops one pin on each page of {@code pages}; unpinning twice is a bug. */
    void unpin(PinnedPages pages);

    /**
     * Drops one pin on each page of [va, va + lengthBytes), as the kernel unpins page by page; a page
     * without a pin is a bug ({@link IllegalStateException}).
     */
    void unpin(long va, long lengthBytes);

    /** {@return how many pins the page holding {@code va} has (0 when unpinned or unmapped)} */
    int pinCount(long va);

    /** {@return the physical address behind {@code va}} @throws dev.jiommu.errno.ErrnoException EFAULT if unmapped */
    long physicalAddress(long va);

    /** {@return {@code length} bytes at {@code va}} @throws dev.jiommu.errno.ErrnoException EFAULT if unmapped */
    byte[] read(long va, int length);

    /** Writes {@code bytes} at {@code va}. @throws dev.jiommu.errno.ErrnoException EFAULT if unmapped */
    void write(long va, byte[] bytes);

    /**
     * Copies {@code length} bytes at {@code va} into {@code dst} at {@code dstOffset}, as
     * {@link #read(long, int)} would read them; an implementation may do it without the array.
     */
    default void read(long va, MemorySegment dst, long dstOffset, int length) {
        MemorySegment.copy(read(va, length), 0, dst, ValueLayout.JAVA_BYTE, dstOffset, length);
    }

    /** Writes {@code length} bytes of {@code src} at {@code srcOffset} to {@code va}, as {@link #write(long, byte[])} would. */
    default void write(long va, MemorySegment src, long srcOffset, int length) {
        write(va, src.asSlice(srcOffset, length).toArray(ValueLayout.JAVA_BYTE));
    }

    /** {@return the total number of page pins outstanding, so tests can check nothing leaked} */
    long pinnedPages();

    /** {@return the physical memory that backs these pages} */
    PhysicalMemory physicalMemory();

    /**
     * {@return the address space a mapping made now pins from, later too} (the kernel keeps the
     * mapping process's mm with its pages). Memory several processes call through (a server's
     * client and its forked children) answers the calling process's; by default, this one.
     */
    default UserMemory mappingSource() {
        return this;
    }
}
