package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * The memory of another process, as a server sees its client: reads and writes go to the live
 * process ({@link ProcessAccess}, process_vm_readv/writev on Linux); a pinned page gets a frame of
 * this side's physical memory, which DMA reads and writes, and which {@link #syncIn()} and
 * {@link #syncOut()} keep coherent with the process's page.
 *
 * <p>Page identity and pin counts are this object's own bookkeeping: the same page pinned twice
 * is one frame with two pins, and its frame is freed at the last unpin.
 *
 * <p>Thread safety: synchronized.
 */
public final class RemoteUserMemory implements UserMemory {
    /* Implementation notes
     *
     * Coherence is at call boundaries, not live: a client observes device effects only through
     * calls (in the selftest, IOMMU_TEST_CMD: ACCESS_RW, the checks), so the server brings the
     * frames up to date before such a call (syncIn) and writes back the frames a device changed
     * after it (syncOut: a frame that differs from the process's page, which the client, blocked in
     * its call, cannot have changed). No copy of the pages is kept: the cost is one read per run of
     * pinned pages each way, and only calls that move bytes pay it.
     *
     * The process a page is read from is the caller's at pin time (a forked child's IOAS_MAP pins
     * the child's pages); that process is remembered per page, so a later sync reads the child
     * while it lives and keeps the frame's bytes when it is gone, as a pinned page outlives its mm
     * (memory it shared with the owner, MAP_SHARED across fork, is the owner's then).
     */

    /** How this side reaches the process's memory. */
    public interface ProcessAccess {
        /** Copies [va, va + length) of process {@code pid} into {@code dst}; {@return bytes copied, or −errno} */
        long read(int pid, long va, byte[] dst, int offset, int length);

        /** Copies {@code src} to [va, va + length) of process {@code pid}; {@return bytes copied, or −errno} */
        long write(int pid, long va, byte[] src, int offset, int length);

        /**
         * {@return the frame of the shared file page the process maps at {@code va} (a memfd the
         * server mirrors), or −1} so a VA of a MAP_SHARED file mapping is the file's page, as in
         * the kernel. Default: none.
         */
        default long sharedFrame(int pid, long va) {
            return -1;
        }

        /** {@return the pins of the shared file page at {@code va} (see {@link #sharedFrame}), or −1} */
        default int sharedPinCount(int pid, long va) {
            return -1;
        }

        /** {@return whether {@code va} lies in a shared mapping of {@code pid} (the same memory in a forked child)} */
        default boolean sharedMemory(int pid, long va) {
            return false;
        }

        /**
         * {@return the huge page size (bytes) of the hugetlb mapping holding {@code va}, or 0}: such
         * memory is physically contiguous per huge page, which decides the IO page sizes a domain
         * maps it with.
         */
        default long hugePageBytes(int pid, long va) {
            return 0;
        }
    }

    /** Marks the "physical address" of a page nobody pinned: never equal to a frame's. */
    public static final long UNPINNED_TAG = 1L << 62;
    private static final int PAGE = (int) PAGE_BYTES;
    /** A frame's bytes, and a page's, read to compare them without allocating. Guarded by this. */
    private final byte[] scratch = new byte[PAGE];
    private final java.lang.foreign.MemorySegment scratchSegment = java.lang.foreign.MemorySegment.ofArray(scratch);
    private final byte[] other = new byte[PAGE];
    /** Where a sync reads a run of pages. Guarded by this. */
    private byte[] run = new byte[PAGE];
    private java.lang.foreign.MemorySegment runSegment = java.lang.foreign.MemorySegment.ofArray(run);
    /** The most pages {@link #syncIn()} reads with one call. */
    private static final int SYNC_RUN_PAGES = 256;

    private final PhysicalMemory memory;
    private final ProcessAccess access;
    /** The process whose memory this is: what a page falls back to when its own process is gone. */
    private final int ownerPid;
    private int callerPid;
    /** Page VA → its pin. Guarded by this. */
    private final TreeMap<Long, Page> pages = new TreeMap<>();
    private long pinnedPages;

    /** Huge page blocks by their first VA: contiguous frames for hugetlb memory. Guarded by this. */
    private final Map<Long, HugeBlock> hugeBlocks = new java.util.HashMap<>();

    private static final class Page {
        final long physicalAddress;
        final int pid;
        /** The huge page block the frame belongs to, or null for a frame of its own. */
        final HugeBlock block;
        int pins;
        Page(long physicalAddress, int pid, HugeBlock block) {
            this.physicalAddress = physicalAddress;
            this.pid = pid;
            this.block = block;
        }
    }

    /** The frames of one huge page, freed when none of its pages has a pin. */
    private static final class HugeBlock {
        final long va;
        final long physicalAddress;
        final long lengthBytes;
        int framedPages;

        HugeBlock(long va, long physicalAddress, long lengthBytes) {
            this.va = va;
            this.physicalAddress = physicalAddress;
            this.lengthBytes = lengthBytes;
        }
    }

    /** @param pid the process whose memory this is, until {@link #caller} says another one calls */
    public RemoteUserMemory(PhysicalMemory memory, ProcessAccess access, int pid) {
        this.memory = memory;
        this.access = access;
        this.ownerPid = pid;
        this.callerPid = pid;
    }

    /** The most a small read fetches at once, to serve the reads that follow it in the same call. */
    private static final int WINDOW_BYTES = 256;
    /** What one read fetched beyond what it needed, valid for the current call only. Guarded by this. */
    private final byte[] window = new byte[WINDOW_BYTES];
    private long windowVa;
    private int windowLength;

    /**
     * A new call of process {@code pid} begins: reads, writes and new pins go to it, and nothing read
     * for an earlier call is reused.
     */
    public synchronized void caller(int pid) {
        this.callerPid = pid;
        this.windowLength = 0;
    }

    public synchronized int caller() {
        return callerPid;
    }

    @Override
    public PhysicalMemory physicalMemory() {
        return memory;
    }

    /**
     * {@inheritDoc}
     *
     * <p>A small read fetches up to {@link #WINDOW_BYTES} (not past its page) and serves the next
     * reads of the same call from them: a decoder reads a struct's size, then the struct. Within one
     * call that equals reading them in one instant, which the kernel's copy_from_user may also do.
     */
    @Override
    public synchronized byte[] read(long va, int length) {
        byte[] out = new byte[length];
        if (windowLength > 0 && Long.compareUnsigned(va - windowVa, windowLength) < 0 && length <= windowLength - (va - windowVa)) {
            System.arraycopy(window, (int) (va - windowVa), out, 0, length);
            return out;
        }
        if (length < WINDOW_BYTES) {
            int want = (int) Math.min(WINDOW_BYTES, PAGE_BYTES - (va & (PAGE_BYTES - 1)));
            if (want > length) {
                long n = access.read(callerPid, va, window, 0, want);
                if (n >= length) {
                    windowVa = va;
                    windowLength = (int) n;
                    System.arraycopy(window, 0, out, 0, length);
                    return out;
                }
                windowLength = 0;
            }
        }
        readInto(callerPid, va, out, 0, length);
        return out;
    }

    @Override
    public synchronized void write(long va, byte[] bytes) {
        if (bytes.length == 0) {
            return;
        }
        long n = access.write(callerPid, va, bytes, 0, bytes.length);
        if (windowLength > 0 && Long.compareUnsigned(va - windowVa, windowLength) < 0
                || windowLength > 0 && Long.compareUnsigned(windowVa - va, bytes.length) < 0) {
            windowLength = 0; // the call changed what the window holds
        }
        if (n > 0 && !pages.isEmpty()) {
            writeThrough(va, bytes, (int) n);
        }
        if (n != bytes.length) {
            throw ErrnoException.of(Errno.EFAULT, "write va=0x%x length=%d to pid %d: %s", va, bytes.length, callerPid, result(n));
        }
    }

    /**
     * A write to a pinned page reaches its frame too, as the kernel's copy_to_user writes the very
     * page a device reads (and so a later syncOut does not take it for a device's write).
     */
    private void writeThrough(long va, byte[] bytes, int length) {
        for (int done = 0; done < length; ) {
            long at = va + done;
            int n = (int) Math.min(length - done, PAGE_BYTES - (at & (PAGE_BYTES - 1)));
            Page page = pages.get(at & -PAGE_BYTES);
            if (page != null && page.pid == callerPid) {
                memory.write(page.physicalAddress + (at & (PAGE_BYTES - 1)), java.lang.foreign.MemorySegment.ofArray(bytes), done, n);
            }
            done += n;
        }
    }

    private void readInto(int pid, long va, byte[] dst, int offset, int length) {
        if (length == 0) {
            return;
        }
        long n = access.read(pid, va, dst, offset, length);
        if (n != length) {
            throw ErrnoException.of(Errno.EFAULT, "read va=0x%x length=%d from pid %d: %s", va, length, pid, result(n));
        }
    }

    private static String result(long n) {
        return n < 0 ? "errno " + -n : "only " + n + " bytes";
    }

    @Override
    public synchronized PinnedPages pin(long va, long lengthBytes, boolean write) {
        return pinFrom(callerPid, va, lengthBytes, write);
    }

    /** Pins, reading new pages from process {@code pid}: the one that mapped them. */
    private PinnedPages pinFrom(int pid, long va, long lengthBytes, boolean write) {
        if (lengthBytes <= 0 || ((va | lengthBytes) & (PAGE_BYTES - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "pin va=0x%x lengthBytes=0x%x: empty or not page aligned", va, lengthBytes);
        }
        if (va + lengthBytes - 1 < va) {
            throw ErrnoException.of(Errno.EOVERFLOW, "pin va=0x%x lengthBytes=0x%x: wraps the address space", va, lengthBytes);
        }
        int count = Math.toIntExact(lengthBytes >>> PAGE_SHIFT);
        // Read every new page first (a missing page is EFAULT and nothing changes); a pin for
        // writing writes the same bytes back, which faults on read-only memory as FOLL_WRITE does.
        byte[][] fresh = new byte[count][];
        for (int i = 0; i < count; i++) {
            long pageVa = va + ((long) i << PAGE_SHIFT);
            if (pages.containsKey(pageVa)) {
                continue;
            }
            byte[] bytes = new byte[PAGE];
            try {
                readInto(pid, pageVa, bytes, 0, PAGE);
                if (write && access.write(pid, pageVa, bytes, 0, PAGE) != PAGE) {
                    throw ErrnoException.of(Errno.EFAULT, "page va=0x%x of pid %d is not writable", pageVa, pid);
                }
            } catch (ErrnoException e) {
                throw ErrnoException.of(Errno.EFAULT, "pin va=0x%x lengthBytes=0x%x: %s", va, lengthBytes, e.getMessage());
            }
            fresh[i] = bytes;
        }
        long[] physical = new long[count];
        int done = 0;
        try {
            for (; done < count; done++) {
                long pageVa = va + ((long) done << PAGE_SHIFT);
                Page page = pages.get(pageVa);
                if (page == null) {
                    page = newPage(pid, pageVa, fresh[done]);
                    pages.put(pageVa, page);
                }
                page.pins++;
                physical[done] = page.physicalAddress;
            }
        } catch (ErrnoException e) {
            if (done > 0) {
                unpinLocked(va, done);
            }
            throw e;
        }
        pinnedPages += count;
        return new PinnedPages(va, physical, write);
    }

    /** A frame for a page pinned for the first time: its own, or its slot in its huge page's block. */
    private Page newPage(int pid, long pageVa, byte[] bytes) {
        long huge = access.hugePageBytes(pid, pageVa);
        HugeBlock block = null;
        long pa;
        if (huge > PAGE_BYTES && Long.bitCount(huge) == 1) {
            long base = pageVa & -huge;
            block = hugeBlocks.get(base);
            if (block == null) {
                block = new HugeBlock(base, memory.allocate(huge, huge), huge);
                hugeBlocks.put(base, block);
            }
            block.framedPages++;
            pa = block.physicalAddress + (pageVa - base);
        } else {
            pa = memory.allocateFrame();
        }
        memory.writeBytes(pa, bytes);
        return new Page(pa, pid, block);
    }

    private void freeFrame(Page page) {
        if (page.block == null) {
            memory.free(page.physicalAddress, PAGE_BYTES);
        } else if (--page.block.framedPages == 0) {
            hugeBlocks.remove(page.block.va);
            memory.free(page.block.physicalAddress, page.block.lengthBytes);
        }
    }

    @Override
    public synchronized void unpin(PinnedPages pinned) {
        if (!pinned.release()) {
            throw new IllegalStateException("bug: " + pinned + " unpinned twice");
        }
        unpinLocked(pinned.va(), pinned.pageCount());
        pinnedPages -= pinned.pageCount();
    }

    @Override
    public synchronized void unpin(long va, long lengthBytes) {
        if (lengthBytes <= 0 || ((va | lengthBytes) & (PAGE_BYTES - 1)) != 0) {
            throw new IllegalStateException(String.format("bug: unpin va=0x%x lengthBytes=0x%x not whole pages", va, lengthBytes));
        }
        int count = Math.toIntExact(lengthBytes >>> PAGE_SHIFT);
        for (int i = 0; i < count; i++) {
            if (!pages.containsKey(va + ((long) i << PAGE_SHIFT))) {
                throw new IllegalStateException(String.format("bug: unpin of unpinned page va=0x%x", va + ((long) i << PAGE_SHIFT)));
            }
        }
        unpinLocked(va, count);
        pinnedPages -= count;
    }

    private void unpinLocked(long va, int count) {
        for (int i = 0; i < count; i++) {
            long pageVa = va + ((long) i << PAGE_SHIFT);
            Page page = pages.get(pageVa);
            if (page == null) {
                throw new IllegalStateException(String.format("bug: unpin of unpinned page va=0x%x", pageVa));
            }
            if (--page.pins == 0) {
                pages.remove(pageVa);
                writeBack(pageVa, page); // a device wrote during the call that pinned and unpinned it
                freeFrame(page);
            }
        }
    }

    /** Views by process: what mappings of a process other than the owner pin from. Guarded by this. */
    private final Map<Integer, UserMemory> views = new java.util.HashMap<>();

    /**
     * {@inheritDoc} Here: the calling process's pages, with this memory's bookkeeping (frames and
     * pins are shared); a later pin of a page nobody pinned yet reads that process, and fails with
     * EFAULT once it is gone, as the kernel cannot pin from a dead mm.
     */
    @Override
    public synchronized UserMemory mappingSource() {
        if (callerPid == ownerPid) {
            return this;
        }
        return views.computeIfAbsent(callerPid, MapperView::new);
    }

    /** This memory as seen by a mapping that process {@code pid} made. */
    private final class MapperView implements UserMemory {
        private final int pid;

        MapperView(int pid) {
            this.pid = pid;
        }

        @Override
        public PinnedPages pin(long va, long lengthBytes, boolean write) {
            synchronized (RemoteUserMemory.this) {
                return pinFrom(pid, va, lengthBytes, write);
            }
        }

        @Override
        public void unpin(PinnedPages pages) {
            RemoteUserMemory.this.unpin(pages);
        }

        @Override
        public void unpin(long va, long lengthBytes) {
            RemoteUserMemory.this.unpin(va, lengthBytes);
        }

        @Override
        public int pinCount(long va) {
            return RemoteUserMemory.this.pinCount(va);
        }

        @Override
        public long physicalAddress(long va) {
            return RemoteUserMemory.this.physicalAddress(va);
        }

        @Override
        public byte[] read(long va, int length) {
            return RemoteUserMemory.this.read(va, length);
        }

        @Override
        public void write(long va, byte[] bytes) {
            RemoteUserMemory.this.write(va, bytes);
        }

        @Override
        public long pinnedPages() {
            return RemoteUserMemory.this.pinnedPages();
        }

        @Override
        public PhysicalMemory physicalMemory() {
            return memory;
        }

        @Override
        public String toString() {
            return "memory of pid " + pid + " (mapped through a context of pid " + ownerPid + ")";
        }
    }

    @Override
    public synchronized int pinCount(long va) {
        Page page = pages.get(va & -PAGE_BYTES);
        if (page != null) {
            return page.pins;
        }
        int shared = access.sharedPinCount(callerPid, va & -PAGE_BYTES);
        return Math.max(shared, 0);
    }

    @Override
    public synchronized long physicalAddress(long va) {
        Page page = pages.get(va & -PAGE_BYTES);
        if (page != null) {
            return page.physicalAddress + (va & (PAGE_BYTES - 1));
        }
        readInto(callerPid, va, new byte[1], 0, 1); // EFAULT when nothing is mapped there
        long shared = access.sharedFrame(callerPid, va & -PAGE_BYTES);
        return shared >= 0 ? shared + (va & (PAGE_BYTES - 1)) : UNPINNED_TAG | va;
    }

    @Override
    public synchronized long pinnedPages() {
        return pinnedPages;
    }

    /** {@return how many distinct pages have a frame} */
    public synchronized int framedPages() {
        return pages.size();
    }

    /**
     * Brings every pinned page's frame up to the process's current bytes. A page whose process is
     * gone (or unmapped it) keeps the frame's bytes, as a pinned page outlives the mapping.
     */
    public synchronized void syncIn() {
        forEachRun((firstVa, pid, run, whole, count) -> {
            for (int i = 0; i < count; i++) {
                long pageVa = firstVa + (long) i * PAGE;
                Page page = pages.get(pageVa);
                if (whole) {
                    memory.write(page.physicalAddress, runSegment, (long) i * PAGE, PAGE);
                } else if (readPage(page, pageVa, other)) {
                    memory.writeBytes(page.physicalAddress, other);
                }
            }
        });
    }

    /**
     * Writes back to the process every frame a device changed since {@link #syncIn()}: the client
     * cannot change its memory during its own call, so a frame that differs from the process's page
     * now is a frame a device wrote.
     */
    public synchronized void syncOut() {
        forEachRun((firstVa, pid, run, whole, count) -> {
            for (int i = 0; i < count; i++) {
                long pageVa = firstVa + (long) i * PAGE;
                Page page = pages.get(pageVa);
                memory.read(page.physicalAddress, scratchSegment, 0, PAGE);
                if (whole) {
                    if (!Arrays.equals(run, i * PAGE, (i + 1) * PAGE, scratch, 0, PAGE)) {
                        windowLength = 0;
                        access.write(pid, pageVa, scratch, 0, PAGE); // a read-only page keeps the frame's bytes only
                    }
                } else {
                    writeBack(pageVa, page);
                }
            }
        });
    }

    /** What to do with one run of adjacent pinned pages of one process, read into {@code run} ({@code whole}: completely). */
    @FunctionalInterface
    private interface RunAction {
        void accept(long firstVa, int pid, byte[] run, boolean whole, int count);
    }

    /** Reads the pinned pages in runs of adjacent pages of one process, one call per run. */
    private void forEachRun(RunAction action) {
        Map.Entry<Long, Page> e = pages.firstEntry();
        while (e != null) {
            long firstVa = e.getKey();
            int pid = e.getValue().pid;
            int count = 0;
            while (e != null && e.getKey() == firstVa + (long) count * PAGE && e.getValue().pid == pid && count < SYNC_RUN_PAGES) {
                count++;
                e = pages.higherEntry(e.getKey());
            }
            int length = count * PAGE;
            if (run.length < length) {
                run = new byte[Math.max(length, run.length * 2)];
                runSegment = java.lang.foreign.MemorySegment.ofArray(run);
            }
            boolean whole = access.read(pid, firstVa, run, 0, length) == length;
            action.accept(firstVa, pid, run, whole, count);
        }
    }

    /**
     * Reads a pinned page's current bytes into {@link #other}: from its process, or, when that is
     * gone and the page lies in memory the owner shares with it, from the owner. {@return whether it could}
     */
    private boolean readPage(Page page, long pageVa, byte[] into) {
        if (access.read(page.pid, pageVa, into, 0, PAGE) == PAGE) {
            return true;
        }
        return page.pid != ownerPid && access.sharedMemory(ownerPid, pageVa) && access.read(ownerPid, pageVa, into, 0, PAGE) == PAGE;
    }

    /**
     * Writes the frame back when a device changed it (it differs from the page now). A page a forked
     * child pinned from a shared mapping is the owner's page too, so when the child is gone the owner
     * gets the write; a private page of a gone process, or a read-only page, keeps the frame's bytes only.
     */
    private void writeBack(long pageVa, Page page) {
        memory.read(page.physicalAddress, scratchSegment, 0, PAGE);
        int target;
        if (access.read(page.pid, pageVa, other, 0, PAGE) == PAGE) {
            target = page.pid;
        } else if (page.pid != ownerPid && access.sharedMemory(ownerPid, pageVa) && access.read(ownerPid, pageVa, other, 0, PAGE) == PAGE) {
            target = ownerPid;
        } else {
            return;
        }
        if (!Arrays.equals(scratch, other)) {
            windowLength = 0;
            access.write(target, pageVa, scratch, 0, PAGE);
        }
    }
}
