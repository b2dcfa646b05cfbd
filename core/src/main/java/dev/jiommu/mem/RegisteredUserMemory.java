package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.TreeMap;

/**
 * User memory made of regions the caller registers, as a VMM registers guest RAM: either its own
 * segments (adopted into physical memory, so DMA and the caller see the same bytes) or fresh
 * physically contiguous memory.
 *
 * <p>Thread safety: every method synchronizes on this object.
 */
public final class RegisteredUserMemory implements UserMemory {
    private final PhysicalMemory memory;
    /** Regions by first VA. Guarded by this. */
    private final TreeMap<Long, Region> regions = new TreeMap<>();
    /** The region the last lookup found (guarded by the monitor; cleared when a region goes). */
    private Region lastFound;
    private long pinnedPages;

    private static final class Region {
        final long va;
        final long lengthBytes;
        final long physicalAddress;
        final boolean writable;
        final boolean adopted;
        final int[] pins;

        Region(long va, long lengthBytes, long physicalAddress, boolean writable, boolean adopted) {
            this.va = va;
            this.lengthBytes = lengthBytes;
            this.physicalAddress = physicalAddress;
            this.writable = writable;
            this.adopted = adopted;
            this.pins = new int[Math.toIntExact(lengthBytes >>> PAGE_SHIFT)];
        }

        long end() {
            return va + lengthBytes;
        }
    }

    public RegisteredUserMemory(PhysicalMemory memory) {
        this.memory = memory;
    }

    @Override
    public PhysicalMemory physicalMemory() {
        return memory;
    }

    /**
     * Registers {@code segment} at [va, va + its size); DMA through a pin of it reaches its bytes.
     *
     * @return the physical address behind {@code va}
     * @throws ErrnoException EINVAL for misalignment or overflow, EEXIST for overlap with a region
     */
    public synchronized long register(long va, MemorySegment segment, boolean writable) {
        long lengthBytes = segment.byteSize();
        checkNewRange(va, lengthBytes);
        long pa = memory.adopt(segment);
        regions.put(va, new Region(va, lengthBytes, pa, writable, true));
        return pa;
    }

    /**
     * Registers fresh zeroed memory at [va, va + lengthBytes), physically contiguous and aligned to
     * {@code physicalAlignBytes} (so a VMM can back it with "huge pages").
     *
     * @return the physical address behind {@code va}
     */
    public synchronized long register(long va, long lengthBytes, long physicalAlignBytes, boolean writable) {
        checkNewRange(va, lengthBytes);
        long pa = memory.allocate(lengthBytes, Math.max(PAGE_BYTES, physicalAlignBytes));
        regions.put(va, new Region(va, lengthBytes, pa, writable, false));
        return pa;
    }

    /**
     * Removes the region starting at {@code va} and returns its memory.
     *
     * @throws ErrnoException ENOENT if no region starts there, EBUSY while any of its pages is pinned
     */
    public synchronized void unregister(long va) {
        Region region = regions.get(va);
        if (region == null) {
            throw ErrnoException.of(Errno.ENOENT, "unregister va=0x%x: no region starts there", va);
        }
        for (int i = 0; i < region.pins.length; i++) {
            if (region.pins[i] != 0) {
                throw ErrnoException.of(Errno.EBUSY, "unregister va=0x%x: page va=0x%x has %d pins",
                        va, va + ((long) i << PAGE_SHIFT), region.pins[i]);
            }
        }
        regions.remove(va);
        lastFound = null;
        if (region.adopted) {
            memory.unadopt(region.physicalAddress, region.lengthBytes);
        } else {
            memory.free(region.physicalAddress, region.lengthBytes);
        }
    }

    @Override
    public synchronized long physicalAddress(long va) {
        Region region = regionOf(va);
        if (region == null) {
            throw ErrnoException.of(Errno.EFAULT, "va=0x%x is not mapped", va);
        }
        return region.physicalAddress + (va - region.va);
    }

    @Override
    public byte[] read(long va, int length) {
        byte[] out = new byte[length];
        read(va, MemorySegment.ofArray(out), 0, length);
        return out;
    }

    @Override
    public synchronized void read(long va, MemorySegment dst, long dstOffset, int length) {
        for (int done = 0; done < length; ) {
            long at = va + done;
            int n = (int) Math.min(length - done, PAGE_BYTES - (at & (PAGE_BYTES - 1)));
            memory.read(physicalAddress(at), dst, dstOffset + done, n);
            done += n;
        }
    }

    @Override
    public void write(long va, byte[] bytes) {
        write(va, MemorySegment.ofArray(bytes), 0, bytes.length);
    }

    @Override
    public synchronized void write(long va, MemorySegment src, long srcOffset, int length) {
        for (int done = 0; done < length; ) {
            long at = va + done;
            int n = (int) Math.min(length - done, PAGE_BYTES - (at & (PAGE_BYTES - 1)));
            memory.write(physicalAddress(at), src, srcOffset + done, n);
            done += n;
        }
    }

    @Override
    public synchronized PinnedPages pin(long va, long lengthBytes, boolean write) {
        if (lengthBytes <= 0 || ((va | lengthBytes) & (PAGE_BYTES - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "pin va=0x%x lengthBytes=0x%x: empty or not page aligned", va, lengthBytes);
        }
        if (va + lengthBytes - 1 < va) {
            throw ErrnoException.of(Errno.EOVERFLOW, "pin va=0x%x lengthBytes=0x%x: wraps the address space", va, lengthBytes);
        }
        // Validate everything before touching a count, so a refused pin changes nothing, and region by
        // region before allocating, so a caller's huge length costs nothing when the memory is not there.
        for (long at = va, left = lengthBytes; left > 0; ) {
            Region region = regionOf(at);
            if (region == null) {
                throw ErrnoException.of(Errno.EFAULT, "pin va=0x%x lengthBytes=0x%x: page va=0x%x is not mapped", va, lengthBytes, at);
            }
            if (write && !region.writable) {
                throw ErrnoException.of(Errno.EFAULT, "pin va=0x%x lengthBytes=0x%x: page va=0x%x is read-only", va, lengthBytes, at);
            }
            long inRegion = region.end() - at; // unsigned: a region may end at 2^64
            if (Long.compareUnsigned(inRegion, left) >= 0) {
                break;
            }
            at += inRegion;
            left -= inRegion;
        }
        int pages = Math.toIntExact(lengthBytes >>> PAGE_SHIFT);
        long[] physical = new long[pages];
        Region region = null;
        for (int i = 0; i < pages; i++) {
            long pageVa = va + ((long) i << PAGE_SHIFT);
            if (region == null || pageVa >= region.end()) {
                region = regionOf(pageVa);
            }
            physical[i] = region.physicalAddress + (pageVa - region.va);
        }
        adjustPins(va, pages, +1);
        return new PinnedPages(va, physical, write);
    }

    @Override
    public synchronized void unpin(PinnedPages pages) {
        if (!pages.release()) {
            throw new IllegalStateException("bug: " + pages + " unpinned twice");
        }
        adjustPins(pages.va(), pages.pageCount(), -1);
    }

    @Override
    public synchronized void unpin(long va, long lengthBytes) {
        if (lengthBytes <= 0 || ((va | lengthBytes) & (PAGE_BYTES - 1)) != 0) {
            throw new IllegalStateException(String.format("bug: unpin va=0x%x lengthBytes=0x%x not whole pages", va, lengthBytes));
        }
        int pages = Math.toIntExact(lengthBytes >>> PAGE_SHIFT);
        for (int i = 0; i < pages; i++) {
            long pageVa = va + ((long) i << PAGE_SHIFT);
            Region region = regionOf(pageVa);
            if (region == null || region.pins[(int) ((pageVa - region.va) >>> PAGE_SHIFT)] == 0) {
                throw new IllegalStateException(String.format("bug: unpin of unpinned page va=0x%x", pageVa));
            }
        }
        adjustPins(va, pages, -1);
    }

    @Override
    public synchronized int pinCount(long va) {
        Region region = regionOf(va);
        return region == null ? 0 : region.pins[(int) ((va - region.va) >>> PAGE_SHIFT)];
    }

    @Override
    public synchronized long pinnedPages() {
        return pinnedPages;
    }

    private void adjustPins(long va, int pages, int delta) {
        Region region = null;
        for (int i = 0; i < pages; i++) {
            long pageVa = va + ((long) i << PAGE_SHIFT);
            if (region == null || pageVa >= region.end()) {
                region = regionOf(pageVa);
            }
            int index = (int) ((pageVa - region.va) >>> PAGE_SHIFT);
            region.pins[index] += delta;
            if (region.pins[index] < 0) {
                throw new IllegalStateException("bug: negative pin count at va=0x" + Long.toHexString(pageVa));
            }
        }
        pinnedPages += (long) delta * pages;
    }

    /** Callers hold the monitor. Most lookups land in the region of the one before: it is tried first. */
    private Region regionOf(long va) {
        Region last = lastFound;
        if (last != null && va >= last.va && va < last.end()) {
            return last;
        }
        Map.Entry<Long, Region> e = regions.floorEntry(va);
        if (e == null || va >= e.getValue().end()) {
            return null;
        }
        lastFound = e.getValue();
        return lastFound;
    }

    private void checkNewRange(long va, long lengthBytes) {
        if (lengthBytes <= 0 || ((va | lengthBytes) & (PAGE_BYTES - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "register va=0x%x lengthBytes=0x%x: empty or not page aligned", va, lengthBytes);
        }
        if (va + lengthBytes - 1 < va) {
            throw ErrnoException.of(Errno.EOVERFLOW, "register va=0x%x lengthBytes=0x%x: wraps the address space", va, lengthBytes);
        }
        Map.Entry<Long, Region> below = regions.floorEntry(va + lengthBytes - 1);
        if (below != null && below.getValue().end() > va) {
            throw ErrnoException.of(Errno.EEXIST, "register va=0x%x lengthBytes=0x%x: overlaps region va=0x%x", va, lengthBytes, below.getKey());
        }
    }
}
