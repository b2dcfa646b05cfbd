package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A memfd-like file whose pages live in physical memory: what IOAS_MAP_FILE maps. Its offsets form
 * an address space of their own, so it is a {@link UserMemory} whose "virtual addresses" are file
 * offsets: page identity is (file, offset), not a process mapping.
 *
 * <p>Pages are allocated on first use and stay put until the file shrinks past them; a pinned page
 * survives truncation (as a pinned shmem page does) and is freed at its last unpin. Pinning past the
 * end of the file is EINVAL, as shmem pinning is. Thread safety: synchronized.
 */
public final class MemoryFile implements UserMemory {
    private final PhysicalMemory memory;
    private final String name;
    private final boolean writable;
    private long sizeBytes;
    /** Page index → physical address of that page. Guarded by this. */
    private final Map<Long, Long> pages = new HashMap<>();
    /** Page index → pin count (absent = 0). Guarded by this. */
    private final Map<Long, Integer> pins = new HashMap<>();
    /** Pinned pages cut off by truncation, freed at their last unpin. Guarded by this. */
    private final Map<Long, Long> orphans = new HashMap<>();
    private long pinnedPages;

    /**
     * @param writable whether the file was opened for writing (a writable mapping needs it)
     */
    public MemoryFile(PhysicalMemory memory, String name, long sizeBytes, boolean writable) {
        if (sizeBytes < 0) {
            throw ErrnoException.of(Errno.EINVAL, "memory file %s: negative size %d", name, sizeBytes);
        }
        this.memory = memory;
        this.name = name;
        this.sizeBytes = sizeBytes;
        this.writable = writable;
    }

    public String name() {
        return name;
    }

    public boolean writable() {
        return writable;
    }

    public synchronized long sizeBytes() {
        return sizeBytes;
    }

    @Override
    public PhysicalMemory physicalMemory() {
        return memory;
    }

    /** Sets the size; unpinned pages past the new end are freed (ftruncate). */
    public synchronized void truncate(long newSizeBytes) {
        if (newSizeBytes < 0) {
            throw ErrnoException.of(Errno.EINVAL, "truncate %s to %d", name, newSizeBytes);
        }
        long firstGone = (newSizeBytes + PAGE_BYTES - 1) >>> PAGE_SHIFT;
        pages.entrySet().removeIf(e -> {
            if (e.getKey() < firstGone) {
                return false;
            }
            if (pins.containsKey(e.getKey())) {
                orphans.put(e.getKey(), e.getValue());
            } else {
                memory.free(e.getValue(), PAGE_BYTES);
            }
            return true;
        });
        sizeBytes = newSizeBytes;
    }

    @Override
    public synchronized long physicalAddress(long offset) {
        checkInside(offset, 1, "address of");
        return page(offset >>> PAGE_SHIFT) + (offset & (PAGE_BYTES - 1));
    }

    /** Writes {@code bytes} at {@code offset}, growing nothing: the range must be inside the file. */
    @Override
    public synchronized void write(long offset, byte[] bytes) {
        checkInside(offset, bytes.length, "write");
        for (int done = 0; done < bytes.length; ) {
            long at = offset + done;
            int n = (int) Math.min(bytes.length - done, PAGE_BYTES - (at & (PAGE_BYTES - 1)));
            byte[] part = Arrays.copyOfRange(bytes, done, done + n);
            memory.writeBytes(page(at >>> PAGE_SHIFT) + (at & (PAGE_BYTES - 1)), part);
            done += n;
        }
    }

    /** {@return {@code length} bytes read at {@code offset}} */
    @Override
    public synchronized byte[] read(long offset, int length) {
        checkInside(offset, length, "read");
        byte[] out = new byte[length];
        for (int done = 0; done < length; ) {
            long at = offset + done;
            int n = (int) Math.min(length - done, PAGE_BYTES - (at & (PAGE_BYTES - 1)));
            System.arraycopy(memory.readBytes(page(at >>> PAGE_SHIFT) + (at & (PAGE_BYTES - 1)), n), 0, out, done, n);
            done += n;
        }
        return out;
    }

    @Override
    public synchronized PinnedPages pin(long offset, long lengthBytes, boolean write) {
        if (lengthBytes <= 0 || ((offset | lengthBytes) & (PAGE_BYTES - 1)) != 0 || offset < 0) {
            throw ErrnoException.of(Errno.EINVAL, "pin %s offset=0x%x lengthBytes=0x%x: empty or not page aligned", name, offset, lengthBytes);
        }
        if (write && !writable) {
            throw ErrnoException.of(Errno.EPERM, "pin %s for writing: file not opened for writing", name);
        }
        if (offset + lengthBytes > ((sizeBytes + PAGE_BYTES - 1) & -PAGE_BYTES)) {
            throw ErrnoException.of(Errno.EINVAL, "pin %s offset=0x%x lengthBytes=0x%x: beyond the end of the file (0x%x bytes)",
                    name, offset, lengthBytes, sizeBytes);
        }
        int count = Math.toIntExact(lengthBytes >>> PAGE_SHIFT);
        long[] physical = new long[count];
        long first = offset >>> PAGE_SHIFT;
        for (int i = 0; i < count; i++) {
            physical[i] = page(first + i);
        }
        for (int i = 0; i < count; i++) {
            pins.merge(first + i, 1, Integer::sum);
        }
        pinnedPages += count;
        return new PinnedPages(offset, physical, write);
    }

    @Override
    public synchronized void unpin(PinnedPages pinned) {
        if (!pinned.release()) {
            throw new IllegalStateException("bug: " + pinned + " unpinned twice");
        }
        unpin(pinned.va(), pinned.lengthBytes());
    }

    @Override
    public synchronized void unpin(long offset, long lengthBytes) {
        long first = offset >>> PAGE_SHIFT;
        long count = lengthBytes >>> PAGE_SHIFT;
        for (long p = first; p < first + count; p++) {
            if (!pins.containsKey(p)) {
                throw new IllegalStateException(String.format("bug: unpin of unpinned page offset=0x%x of %s", p << PAGE_SHIFT, name));
            }
        }
        for (long p = first; p < first + count; p++) {
            int left = pins.merge(p, -1, Integer::sum);
            if (left == 0) {
                pins.remove(p);
                Long orphan = orphans.remove(p);
                if (orphan != null) {
                    memory.free(orphan, PAGE_BYTES);
                }
            }
        }
        pinnedPages -= count;
    }

    @Override
    public synchronized int pinCount(long offset) {
        return pins.getOrDefault(offset >>> PAGE_SHIFT, 0);
    }

    @Override
    public synchronized long pinnedPages() {
        return pinnedPages;
    }

    /** Frees every page; pinned pages are a bug. */
    public synchronized void close() {
        if (!pins.isEmpty()) {
            throw new IllegalStateException("bug: closing " + name + " with " + pins.size() + " pinned pages");
        }
        for (long pa : pages.values()) {
            memory.free(pa, PAGE_BYTES);
        }
        pages.clear();
    }

    private long page(long index) {
        Long pa = pages.get(index);
        if (pa == null) {
            pa = memory.allocateFrame();
            pages.put(index, pa);
        }
        return pa;
    }

    private void checkInside(long offset, long length, String what) {
        if (offset < 0 || length < 0 || offset + length > sizeBytes) {
            throw ErrnoException.of(Errno.EINVAL, "%s %s offset=0x%x length=0x%x: outside the file (0x%x bytes)", what, name, offset, length, sizeBytes);
        }
    }
}
