package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * A dma-buf-like export of device memory (the selftest exporter's kind): physically contiguous
 * memory that importers map directly, and that the exporter can revoke, after which importers must
 * stop using it and new imports fail with ENODEV. Its offsets form an address space, so it is a
 * {@link UserMemory}: "pinning" device memory takes a count but charges nobody.
 *
 * <p>Thread safety: synchronized; revocation listeners run without this object's monitor held.
 */
public final class DmaBuf implements UserMemory {
    private final PhysicalMemory memory;
    private final long physicalAddress;
    private final long sizeBytes;
    private final int[] pins;
    private final List<Consumer<DmaBuf>> revocationListeners = new ArrayList<>();
    private boolean revoked;
    private long pinned;
    private boolean released;

    /** Exports {@code sizeBytes} (a multiple of the page size) of fresh, contiguous device memory. */
    public DmaBuf(PhysicalMemory memory, long sizeBytes) {
        if (sizeBytes <= 0 || (sizeBytes & (PAGE_BYTES - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "dma-buf of %d bytes: not whole pages", sizeBytes);
        }
        this.memory = memory;
        this.sizeBytes = sizeBytes;
        this.physicalAddress = memory.allocate(sizeBytes, PAGE_BYTES);
        this.pins = new int[Math.toIntExact(sizeBytes >>> PAGE_SHIFT)];
    }

    public long sizeBytes() {
        return sizeBytes;
    }

    public synchronized boolean revoked() {
        return revoked;
    }

    /** Registers an importer to tell when the buffer is revoked. */
    public synchronized void onRevoke(Consumer<DmaBuf> listener) {
        revocationListeners.add(listener);
    }

    /** Revokes (or restores) the buffer; on revocation every importer is told to stop using it. */
    public void revoke(boolean revoke) {
        List<Consumer<DmaBuf>> listeners;
        synchronized (this) {
            boolean changed = revoke && !revoked;
            revoked = revoke;
            listeners = changed ? List.copyOf(revocationListeners) : List.of();
        }
        for (Consumer<DmaBuf> listener : listeners) {
            listener.accept(this);
        }
    }

    @Override
    public PhysicalMemory physicalMemory() {
        return memory;
    }

    @Override
    public synchronized PinnedPages pin(long offset, long lengthBytes, boolean write) {
        if (revoked) {
            throw ErrnoException.of(Errno.ENODEV, "dma-buf is revoked");
        }
        checkRange(offset, lengthBytes);
        int first = (int) (offset >>> PAGE_SHIFT);
        int count = (int) (lengthBytes >>> PAGE_SHIFT);
        long[] physical = new long[count];
        for (int i = 0; i < count; i++) {
            physical[i] = physicalAddress + ((long) (first + i) << PAGE_SHIFT);
            pins[first + i]++;
        }
        pinned += count;
        return new PinnedPages(offset, physical, write);
    }

    @Override
    public synchronized void unpin(PinnedPages pages) {
        if (!pages.release()) {
            throw new IllegalStateException("bug: " + pages + " unpinned twice");
        }
        unpin(pages.va(), pages.lengthBytes());
    }

    @Override
    public synchronized void unpin(long offset, long lengthBytes) {
        int first = (int) (offset >>> PAGE_SHIFT);
        int count = (int) (lengthBytes >>> PAGE_SHIFT);
        for (int i = first; i < first + count; i++) {
            if (pins[i] == 0) {
                throw new IllegalStateException("bug: unpin of unpinned dma-buf page " + i);
            }
            pins[i]--;
        }
        pinned -= count;
    }

    @Override
    public synchronized int pinCount(long offset) {
        return offset < 0 || offset >= sizeBytes ? 0 : pins[(int) (offset >>> PAGE_SHIFT)];
    }

    @Override
    public synchronized long pinnedPages() {
        return pinned;
    }

    @Override
    public long physicalAddress(long offset) {
        checkRange(offset & -PAGE_BYTES, PAGE_BYTES);
        return physicalAddress + offset;
    }

    @Override
    public byte[] read(long offset, int length) {
        checkRange(offset, length);
        return memory.readBytes(physicalAddress + offset, length);
    }

    @Override
    public void write(long offset, byte[] bytes) {
        checkRange(offset, bytes.length);
        memory.writeBytes(physicalAddress + offset, bytes);
    }

    /** Returns the device memory; importers must be gone. */
    public synchronized void release() {
        if (pinned != 0) {
            throw new IllegalStateException("bug: releasing a dma-buf with " + pinned + " pages in use");
        }
        if (!released) {
            memory.free(physicalAddress, sizeBytes);
            released = true;
        }
    }

    private void checkRange(long offset, long lengthBytes) {
        if (offset < 0 || lengthBytes < 0 || offset > sizeBytes - lengthBytes) {
            throw ErrnoException.of(Errno.EINVAL, "dma-buf range offset=0x%x length=0x%x: outside its 0x%x bytes", offset, lengthBytes, sizeBytes);
        }
    }
}
