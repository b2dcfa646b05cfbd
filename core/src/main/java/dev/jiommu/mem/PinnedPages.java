package dev.jiommu.mem;

/**
 * A run of pinned user pages: where it starts in the user address space and the physical address
 * of each page. Returned by {@link UserMemory#pin}, given back to {@link UserMemory#unpin} once.
 */
public final class PinnedPages {
    private final long va;
    private final long[] physicalAddresses;
    private final boolean writable;
    private boolean released;

    PinnedPages(long va, long[] physicalAddresses, boolean writable) {
        this.va = va;
        this.physicalAddresses = physicalAddresses;
        this.writable = writable;
    }

    /** {@return the user virtual address of the first page} */
    public long va() {
        return va;
    }

    public int pageCount() {
        return physicalAddresses.length;
    }

    public long lengthBytes() {
        return (long) physicalAddresses.length << UserMemory.PAGE_SHIFT;
    }

    /** {@return the physical address of page {@code index}} */
    public long physicalAddress(int index) {
        return physicalAddresses[index];
    }

    /** {@return whether the pages were pinned for writing} */
    public boolean writable() {
        return writable;
    }

    /** Marks the run released; {@return whether it was still pinned} */
    boolean release() {
        boolean was = !released;
        released = true;
        return was;
    }

    @Override
    public String toString() {
        return String.format("PinnedPages[va=0x%x pages=%d writable=%s]", va, physicalAddresses.length, writable);
    }
}
