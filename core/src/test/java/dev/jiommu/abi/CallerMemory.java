package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.PinnedPages;
import dev.jiommu.mem.RegisteredUserMemory;
import dev.jiommu.mem.UserMemory;

import java.util.ArrayList;
import java.util.List;

/**
 * A caller's address space as the kernel's copy_to_user sees it: registered regions, where a write
 * to a read-only one faults (RegisteredUserMemory only refuses to pin those for writing), so the
 * tests can make a write-back fail.
 */
final class CallerMemory implements UserMemory {
    private final RegisteredUserMemory memory;
    /** [first, end) of the read-only regions. */
    private final List<long[]> readOnly = new ArrayList<>();

    CallerMemory(PhysicalMemory physical) {
        this.memory = new RegisteredUserMemory(physical);
    }

    /** mmap of {@code lengthBytes} of fresh memory at {@code va}. */
    void register(long va, long lengthBytes, boolean writable) {
        memory.register(va, lengthBytes, PAGE_BYTES, writable);
        if (!writable) {
            readOnly.add(new long[] {va, va + lengthBytes});
        }
    }

    @Override
    public void write(long va, byte[] bytes) {
        for (long[] r : readOnly) {
            if (Long.compareUnsigned(va, r[1]) < 0 && Long.compareUnsigned(va + bytes.length, r[0]) > 0) {
                throw ErrnoException.of(Errno.EFAULT, "write va=0x%x length=%d: read-only memory", va, bytes.length);
            }
        }
        memory.write(va, bytes);
    }

    /** Writes as the process itself may have before the page became read-only (mprotect). */
    void poke(long va, byte[] bytes) {
        memory.write(va, bytes);
    }

    @Override
    public byte[] read(long va, int length) {
        return memory.read(va, length);
    }

    @Override
    public PinnedPages pin(long va, long lengthBytes, boolean write) {
        return memory.pin(va, lengthBytes, write);
    }

    @Override
    public void unpin(PinnedPages pages) {
        memory.unpin(pages);
    }

    @Override
    public void unpin(long va, long lengthBytes) {
        memory.unpin(va, lengthBytes);
    }

    @Override
    public int pinCount(long va) {
        return memory.pinCount(va);
    }

    @Override
    public long physicalAddress(long va) {
        return memory.physicalAddress(va);
    }

    @Override
    public long pinnedPages() {
        return memory.pinnedPages();
    }

    @Override
    public PhysicalMemory physicalMemory() {
        return memory.physicalMemory();
    }
}
