package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.TreeMap;

/**
 * The MMIO windows drivers registered for mmap on this context (iommufd-uapi.md §6.6): each under
 * its own page-aligned offset, mappable only exactly, and keeping its owner busy while mapped.
 * Guarded by the context lock.
 */
final class MmioWindows {
    private static final long PAGE_BYTES = 4096;

    private record Window(MemorySegment memory, IommufdObject owner) {
    }

    private final TreeMap<Long, Window> windows = new TreeMap<>();
    private long nextOffset = PAGE_BYTES;

    /**
     * {@return the offset reserved for {@code memory}} A driver registers while its object is being
     * made, so the window has no owner yet and cannot be mapped until {@link #claim}.
     */
    long reserve(MemorySegment memory) {
        long offset = nextOffset;
        nextOffset += (memory.byteSize() + PAGE_BYTES - 1) & -PAGE_BYTES;
        windows.put(offset, new Window(memory, null));
        return offset;
    }

    /** Gives the windows reserved since {@code firstOffset} to {@code owner}, or drops them when {@code owner} is null. */
    void claimSince(long firstOffset, IommufdObject owner) {
        Map<Long, Window> pending = windows.tailMap(firstOffset, true);
        if (owner == null) {
            pending.clear();
            return;
        }
        pending.replaceAll((offset, w) -> new Window(w.memory(), owner));
    }

    /** {@return where the next reservation will go (for {@link #claimSince})} */
    long nextOffset() {
        return nextOffset;
    }

    void unregister(IommufdObject owner) {
        windows.values().removeIf(w -> w.owner() == owner);
    }

    /** {@return the memory at exactly [offset, offset + length)} ENXIO otherwise; the owner is busy until unmapped */
    MemorySegment map(long offset, long lengthBytes) {
        Window w = windows.get(offset);
        if (w == null || w.owner() == null || w.memory().byteSize() != lengthBytes) {
            throw IommufdException.of(Errno.ENXIO, "mmap offset=0x%x length=0x%x: no such window", offset, lengthBytes);
        }
        w.owner().get();
        return w.memory();
    }

    void unmap(long offset) {
        Window w = windows.get(offset);
        if (w != null && w.owner() != null) {
            w.owner().put();
        }
    }
}
