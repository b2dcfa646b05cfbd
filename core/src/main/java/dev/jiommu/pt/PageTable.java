package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PhysicalMemory;

/**
 * An I/O page table in emulated physical memory, built and edited the way a driver does: one map /
 * unmap / iova-to-phys / read-and-clear-dirty algorithm over any {@link PageTableFormat}, like the
 * kernel's generic_pt.
 *
 * <p>Semantics (the kernel's): map picks the largest page sizes that alignment and length allow and
 * refuses any overlap with EEXIST, leaving nothing behind; unmap removes whole pages only (a range
 * that starts inside a page stops there, one that ends inside a page removes all of it), skips holes,
 * returns the bytes it removed and frees every table it emptied.
 *
 * <p>Thread safety: one mutator at a time (the owning domain serializes map, unmap and dirty
 * clearing); hardware walkers may read concurrently, since every entry is written with one atomic
 * store and dirty bits are cleared with compare-and-set.
 */
public final class PageTable {
    /* Implementation notes
     *
     * IOVAs are reduced to their low inputBits bits on entry ("truncated"), so a sign-extended
     * format's upper half is just the upper half of the top table; they are sign-extended again only
     * when handed back (forEachLeaf). Ranges are [iova, last] with last inclusive; iova + length is
     * never formed unchecked.
     *
     * Each table's number of non-empty slots lives in its frame's owner word (PhysicalMemory), so
     * unmap knows in O(1) when a table has emptied. A contiguous leaf counts once per slot. Map and
     * unmap add a table's change up and store it once per visit to the table, not once per leaf: an
     * owner-word update is two checked accesses, as costly as the leaf store itself.
     *
     * Map chooses a page size, then places the whole run of pages of that size that the choice would
     * repeat (sameSizeRun) before choosing again. Choosing per page made every leaf store wait for a
     * serial chain of bit operations on the previous page's end; the pages placed are the same.
     */

    /** What {@link #iovaToPhys} returns for an IOVA that nothing maps. */
    public static final long NOT_MAPPED = -1L;

    private final PageTableFormat format;
    private final PhysicalMemory memory;
    private final long pageSizes;
    private final int minPageShift;
    private final long inputMask;
    private final long outputLimit;
    private final long rootAddress;
    private int tablePages;
    private boolean destroyed;

    // Progress of the running unmap or dirty scan (one mutator at a time, so fields, not objects).
    private long walkBytes;
    private boolean walkStopped;

    /** A page table of {@code format} using all of its page sizes. */
    public PageTable(PageTableFormat format, PhysicalMemory memory) {
        this(format, memory, format.pageSizes());
    }

    /**
     * A page table of {@code format} restricted to the page sizes in {@code pageSizes} (a bitmap, as
     * a driver narrows its pgsize_bitmap).
     */
    public PageTable(PageTableFormat format, PhysicalMemory memory, long pageSizes) {
        if (pageSizes == 0 || (pageSizes & ~format.pageSizes()) != 0) {
            throw new IllegalArgumentException(String.format("%s: page sizes 0x%x not a non-empty subset of 0x%x",
                    format.name(), pageSizes, format.pageSizes()));
        }
        this.format = format;
        this.memory = memory;
        this.pageSizes = pageSizes;
        this.minPageShift = Long.numberOfTrailingZeros(pageSizes);
        this.inputMask = format.inputBits() == 64 ? -1L : (1L << format.inputBits()) - 1;
        this.outputLimit = format.outputBits() >= 63 ? Long.MAX_VALUE : 1L << format.outputBits();
        this.rootAddress = allocateTable(format.topLevel());
    }

    public PageTableFormat format() {
        return format;
    }

    /** {@return the physical address of the top table (what a context entry, STE or DTE points to)} */
    public long rootAddress() {
        return rootAddress;
    }

    /** {@return the page sizes this table uses, as a bitmap} */
    public long pageSizes() {
        return pageSizes;
    }

    /** {@return the number of table pages (frames) allocated, the root included} */
    public int tablePages() {
        return tablePages;
    }

    // ---- map ---------------------------------------------------------------------------------

    /**
     * Maps [iova, iova + lengthBytes) to [pa, pa + lengthBytes) with {@code prot}.
     *
     * @throws ErrnoException EINVAL for a zero length, a prot without READ or WRITE, or an iova, pa
     *         or length not aligned to the smallest page size; ERANGE for an iova or pa range the format cannot translate;
     *         EEXIST if any part is already mapped (then nothing is mapped); ENOMEM when no table
     *         page can be allocated (then nothing is mapped)
     */
    public void map(long iova, long pa, long lengthBytes, int prot) {
        checkLive();
        checkRange("map", iova, lengthBytes);
        if ((prot & Prot.READ_WRITE) == 0) {
            throw ErrnoException.of(Errno.EINVAL, "%s map iova=0x%x: prot %s grants neither read nor write", format.name(), iova, Prot.describe(prot));
        }
        if ((pa & ((1L << minPageShift) - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "%s map pa=0x%x: not aligned to the smallest page 0x%x", format.name(), pa, 1L << minPageShift);
        }
        // lengthBytes is unsigned: from 2^63 up it is negative here, and beyond every output range.
        if (pa < 0 || lengthBytes < 0 || outputLimit - pa < lengthBytes) {
            throw ErrnoException.of(Errno.ERANGE, "%s map pa=0x%x lengthBytes=0x%x: beyond the %d-bit output range",
                    format.name(), pa, lengthBytes, format.outputBits());
        }
        long start = iova & inputMask;
        long done = 0;
        // The table that received the last leaf, reused while the next leaf falls in it.
        long cachedTable = 0;
        int cachedLevel = -1;
        long cachedFirst = 0;
        long cachedLast = -1;
        // Slots filled in cachedTable but not yet added to its live count: counted once per table,
        // not per leaf, and always before anything else reads or changes a live count.
        int pendingLive = 0;
        while (done < lengthBytes) {
            long cur = start + done;
            long curPa = pa + done;
            int shift = bestPageShift(cur, curPa, lengthBytes - done);
            int level = format.levelOfPageShift(shift);
            long table;
            if (level == cachedLevel && Long.compareUnsigned(cur, cachedFirst) >= 0 && Long.compareUnsigned(cur, cachedLast) <= 0) {
                table = cachedTable;
            } else {
                if (pendingLive != 0) {
                    addLive(cachedTable, pendingLive);
                    pendingLive = 0;
                }
                try {
                    table = descendCreating(cur, level);
                } catch (ErrnoException e) {
                    undoMap(start, done, cur, level);
                    throw e;
                }
                int span = format.itemShift(level) + format.indexBits(level);
                cachedTable = table;
                cachedLevel = level;
                cachedFirst = span >= 64 ? 0 : cur & -(1L << span);
                cachedLast = span >= 64 ? -1 : cachedFirst + (1L << span) - 1;
            }
            int slots = 1 << (shift - format.itemShift(level));
            int firstIndex = format.index(cur, level);
            // Leaf by leaf still: a collision undoes exactly the leaves placed before it.
            int pages = sameSizeRun(cur, curPa, lengthBytes - done, shift, level, firstIndex);
            for (int p = 0; p < pages; p++) {
                long pageIova = cur + ((long) p << shift);
                long firstSlot = table + ((long) (firstIndex + p * slots) << 3);
                for (int i = 0; i < slots; i++) {
                    long existing = memory.read64(firstSlot + ((long) i << 3));
                    if (format.kind(existing, level) != PageTableFormat.EMPTY) {
                        addLive(table, pendingLive);
                        undoMap(start, done, pageIova, level);
                        throw ErrnoException.of(Errno.EEXIST, "%s map iova=0x%x lengthBytes=0x%x: iova=0x%x already mapped",
                                format.name(), iova, lengthBytes, signExtend(pageIova));
                    }
                }
                long entry = format.leafEntry(curPa + ((long) p << shift), shift, level, prot);
                for (int i = 0; i < slots; i++) {
                    memory.write64(firstSlot + ((long) i << 3), entry);
                }
                pendingLive += slots;
                done += 1L << shift;
            }
        }
        if (pendingLive != 0) {
            addLive(cachedTable, pendingLive);
        }
    }

    /**
     * {@return how many pages of 2^{@code shift} bytes map places one after another from {@code iova}
     * (slot {@code firstIndex} of its table at {@code level}) without choosing another size}: all that
     * the remaining length holds, stopping at the end of the table and where iova and pa first align
     * to the next larger page size together (the only place {@link #bestPageShift} could pick it)
     */
    private int sameSizeRun(long iova, long pa, long remainingBytes, int shift, int level, int firstIndex) {
        long runBytes = remainingBytes & -(1L << shift);
        long larger = pageSizes & -(2L << shift);
        if (larger != 0) {
            long alignMask = Long.lowestOneBit(larger) - 1;
            long toAligned = -iova & alignMask;
            // Already aligned means the larger page did not fit the length, and never will.
            if (((iova ^ pa) & alignMask) == 0 && toAligned != 0) {
                runBytes = Math.min(runBytes, toAligned);
            }
        }
        long tablePages = ((1L << format.indexBits(level)) - firstIndex) >>> (shift - format.itemShift(level));
        return (int) Math.min(runBytes >>> shift, tablePages);
    }

    /** {@return log2 of the largest allowed page that fits the alignment of iova and pa and the length} */
    int bestPageShift(long iova, long pa, long lengthBytes) {
        long candidates = pageSizes;
        long alignment = iova | pa;
        if (alignment != 0) {
            candidates &= (Long.lowestOneBit(alignment) << 1) - 1;
        }
        long fit = Long.highestOneBit(lengthBytes);
        candidates &= fit == Long.MIN_VALUE ? -1L : (fit << 1) - 1;
        if (candidates == 0) {
            throw new AssertionError("bug: no page size for iova=0x" + Long.toHexString(iova));
        }
        return 63 - Long.numberOfLeadingZeros(candidates);
    }

    /** {@return the table at {@code level} that translates {@code iova}, creating tables on the way} */
    private long descendCreating(long iova, int level) {
        long table = rootAddress;
        for (int l = format.topLevel(); l > level; l--) {
            long slot = table + ((long) format.index(iova, l) << 3);
            long entry = memory.read64(slot);
            switch (format.kind(entry, l)) {
                case PageTableFormat.EMPTY -> {
                    long child = allocateTable(l - 1);
                    memory.write64(slot, format.tableEntry(child, l));
                    addLive(table, 1);
                    table = child;
                }
                case PageTableFormat.TABLE -> table = format.tableAddress(entry);
                default -> throw ErrnoException.of(Errno.EEXIST, "%s map iova=0x%x: inside a 0x%x-byte page mapped at level %d",
                        format.name(), signExtend(iova), 1L << format.leafShift(entry, l), l);
            }
        }
        return table;
    }

    /** Takes back a failed map: the leaves placed so far and any table left empty on the failing path. */
    private void undoMap(long start, long done, long failedIova, int failedLevel) {
        if (done > 0) {
            unmapTruncated(start, start + done - 1);
        }
        pruneEmptyTables(failedIova, failedLevel);
    }

    /** Frees tables on the path to {@code iova} that hold no entry, bottom-up. */
    private void pruneEmptyTables(long iova, int downToLevel) {
        long[] path = new long[format.levels()];
        long table = rootAddress;
        int l = format.topLevel();
        path[l] = table;
        while (l > downToLevel) {
            long entry = memory.read64(table + ((long) format.index(iova, l) << 3));
            if (format.kind(entry, l) != PageTableFormat.TABLE) {
                break;
            }
            table = format.tableAddress(entry);
            path[--l] = table;
        }
        for (; l < format.topLevel(); l++) {
            if (live(path[l]) != 0) {
                return;
            }
            memory.write64(path[l + 1] + ((long) format.index(iova, l + 1) << 3), 0);
            addLive(path[l + 1], -1);
            freeTable(path[l], l);
        }
    }

    // ---- unmap -------------------------------------------------------------------------------

    /**
     * Unmaps the pages in [iova, iova + lengthBytes).
     *
     * @return the bytes unmapped: may exceed the length when the range ends inside a page (the whole
     *         page goes), may fall short when it starts inside one (unmap stops there)
     * @throws ErrnoException EINVAL for a zero length or misalignment; ERANGE outside the input range
     */
    public long unmap(long iova, long lengthBytes) {
        checkLive();
        checkRange("unmap", iova, lengthBytes);
        long start = iova & inputMask;
        return unmapTruncated(start, start + lengthBytes - 1);
    }

    private long unmapTruncated(long first, long last) {
        walkBytes = 0;
        walkStopped = false;
        unmapLevel(rootAddress, format.topLevel(), 0, first, last);
        return walkBytes;
    }

    private void unmapLevel(long table, int level, long tableIova, long first, long last) {
        int shift = format.itemShift(level);
        int from = Long.compareUnsigned(first, tableIova) <= 0 ? 0 : format.index(first, level);
        long tableLast = tableLast(tableIova, level);
        int to = Long.compareUnsigned(last, tableLast) >= 0 ? (1 << format.indexBits(level)) - 1 : format.index(last, level);
        // Slots cleared here, taken off this table's live count once, before the caller reads it.
        int cleared = 0;
        for (int i = from; i <= to; i++) {
            long slot = table + ((long) i << 3);
            long entry = memory.read64(slot);
            int kind = format.kind(entry, level);
            if (kind == PageTableFormat.EMPTY) {
                continue;
            }
            if (kind == PageTableFormat.TABLE) {
                long child = format.tableAddress(entry);
                unmapLevel(child, level - 1, tableIova + ((long) i << shift), first, last);
                if (live(child) == 0) {
                    memory.write64(slot, 0);
                    cleared++;
                    freeTable(child, level - 1);
                }
                if (walkStopped) {
                    break;
                }
                continue;
            }
            int leafShift = format.leafShift(entry, level);
            int slots = 1 << (leafShift - shift);
            int group = i & -slots;
            if (Long.compareUnsigned(tableIova + ((long) group << shift), first) < 0) {
                walkStopped = true; // the range starts inside this page: the kernel never splits one
                break;
            }
            for (int k = group; k < group + slots; k++) {
                memory.write64(table + ((long) k << 3), 0);
            }
            cleared += slots;
            walkBytes += 1L << leafShift;
            i = group + slots - 1;
        }
        if (cleared != 0) {
            addLive(table, -cleared);
        }
    }

    // ---- lookup ------------------------------------------------------------------------------

    /** {@return the physical address {@code iova} translates to, or {@link #NOT_MAPPED}} */
    public long iovaToPhys(long iova) {
        checkLive();
        if (!format.inputValid(iova)) {
            return NOT_MAPPED;
        }
        long table = rootAddress;
        int level = format.topLevel();
        while (true) {
            long entry = memory.read64(table + ((long) format.index(iova, level) << 3));
            switch (format.kind(entry, level)) {
                case PageTableFormat.EMPTY -> {
                    return NOT_MAPPED;
                }
                case PageTableFormat.LEAF -> {
                    long size = 1L << format.leafShift(entry, level);
                    return format.leafAddress(entry, level) + (iova & (size - 1));
                }
                default -> {
                    table = format.tableAddress(entry);
                    level = format.childLevel(entry, level);
                }
            }
        }
    }

    /** Calls {@code visitor} for every leaf, in IOVA order (a contiguous leaf once). */
    public void forEachLeaf(LeafVisitor visitor) {
        checkLive();
        visitLevel(rootAddress, format.topLevel(), 0, visitor);
    }

    /** Receives the leaves of {@link #forEachLeaf}. */
    @FunctionalInterface
    public interface LeafVisitor {
        /** One leaf: its IOVA (sign-extended where the format is), output address, size and level. */
        void leaf(long iova, long pa, int sizeShift, int level, long entry);
    }

    private void visitLevel(long table, int level, long tableIova, LeafVisitor visitor) {
        int shift = format.itemShift(level);
        int entries = 1 << format.indexBits(level);
        for (int i = 0; i < entries; i++) {
            long entry = memory.read64(table + ((long) i << 3));
            int kind = format.kind(entry, level);
            long entryIova = tableIova + ((long) i << shift);
            if (kind == PageTableFormat.TABLE) {
                visitLevel(format.tableAddress(entry), level - 1, entryIova, visitor);
            } else if (kind == PageTableFormat.LEAF) {
                int leafShift = format.leafShift(entry, level);
                visitor.leaf(signExtend(entryIova), format.leafAddress(entry, level), leafShift, level, entry);
                i += (1 << (leafShift - shift)) - 1;
            }
        }
    }

    // ---- dirty tracking ------------------------------------------------------------------------

    /**
     * Reports every dirty page in [iova, iova + lengthBytes) into {@code bitmap} and, unless
     * {@code noClear} (iommufd's NO_CLEAR flag), marks it clean again. A contiguous page is dirty if
     * any of its slots is; cleaning cleans them all.
     */
    public void readAndClearDirty(long iova, long lengthBytes, DirtyBitmap bitmap, boolean noClear) {
        checkLive();
        checkRange("read-and-clear-dirty", iova, lengthBytes);
        long first = iova & inputMask;
        dirtyLevel(rootAddress, format.topLevel(), 0, first, first + lengthBytes - 1, bitmap, noClear, iova - first);
    }

    private void dirtyLevel(long table, int level, long tableIova, long first, long last, DirtyBitmap bitmap,
                            boolean noClear, long extension) {
        int shift = format.itemShift(level);
        int from = Long.compareUnsigned(first, tableIova) <= 0 ? 0 : format.index(first, level);
        long tableLast = tableLast(tableIova, level);
        int to = Long.compareUnsigned(last, tableLast) >= 0 ? (1 << format.indexBits(level)) - 1 : format.index(last, level);
        for (int i = from; i <= to; i++) {
            long entry = memory.read64(table + ((long) i << 3));
            int kind = format.kind(entry, level);
            if (kind == PageTableFormat.TABLE) {
                dirtyLevel(format.tableAddress(entry), level - 1, tableIova + ((long) i << shift), first, last, bitmap, noClear, extension);
            } else if (kind == PageTableFormat.LEAF) {
                int slots = 1 << (format.leafShift(entry, level) - shift);
                int group = i & -slots;
                boolean dirty = false;
                for (int k = group; k < group + slots; k++) {
                    dirty |= format.dirty(memory.read64(table + ((long) k << 3)));
                }
                if (dirty) {
                    long leafIova = tableIova + ((long) group << shift);
                    long leafLast = leafIova + (1L << format.leafShift(entry, level)) - 1;
                    bitmap.mark(leafIova + extension, leafLast + extension);
                    if (!noClear) {
                        for (int k = group; k < group + slots; k++) {
                            cleanSlot(table + ((long) k << 3));
                        }
                    }
                }
                i = group + slots - 1;
            }
        }
    }

    /** Cleans one slot with compare-and-set, so an accessed or dirty update racing in is not lost. */
    private void cleanSlot(long slot) {
        while (true) {
            long entry = memory.read64(slot);
            long clean = format.cleanEntry(entry);
            if (clean == entry || memory.compareAndSet64(slot, entry, clean)) {
                return;
            }
        }
    }

    /**
     * Marks dirty the leaf slot that translates {@code iova}, as a device write would (the selftest's
     * DIRTY operation); {@return false when nothing maps {@code iova}}
     */
    public boolean markDirty(long iova) {
        checkLive();
        if (!format.inputValid(iova)) {
            return false;
        }
        long table = rootAddress;
        int level = format.topLevel();
        while (true) {
            long slot = table + ((long) format.index(iova, level) << 3);
            long entry = memory.read64(slot);
            switch (format.kind(entry, level)) {
                case PageTableFormat.EMPTY -> {
                    return false;
                }
                case PageTableFormat.LEAF -> {
                    long dirty = format.dirtyEntry(entry);
                    if (dirty == entry || memory.compareAndSet64(slot, entry, dirty)) {
                        return true;
                    }
                }
                default -> {
                    table = format.tableAddress(entry);
                    level = format.childLevel(entry, level);
                }
            }
        }
    }

    // ---- teardown ------------------------------------------------------------------------------

    /** Frees every table, the root included; the table is unusable afterwards. */
    public void destroy() {
        if (destroyed) {
            return;
        }
        freeSubtree(rootAddress, format.topLevel());
        destroyed = true;
    }

    private void freeSubtree(long table, int level) {
        if (level > 0) {
            int entries = 1 << format.indexBits(level);
            for (int i = 0; i < entries; i++) {
                long entry = memory.read64(table + ((long) i << 3));
                if (format.kind(entry, level) == PageTableFormat.TABLE) {
                    freeSubtree(format.tableAddress(entry), level - 1);
                }
            }
        }
        freeTable(table, level);
    }

    // ---- internals -----------------------------------------------------------------------------

    private void checkLive() {
        if (destroyed) {
            throw new IllegalStateException("bug: " + format.name() + " page table used after destroy");
        }
    }

    private void checkRange(String op, long iova, long lengthBytes) {
        long granule = 1L << minPageShift;
        if (lengthBytes == 0 || ((iova | lengthBytes) & (granule - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "%s %s iova=0x%x lengthBytes=0x%x: zero or not aligned to 0x%x",
                    format.name(), op, iova, lengthBytes, granule);
        }
        long last = iova + lengthBytes - 1;
        if (Long.compareUnsigned(last, iova) < 0 || !format.inputValid(iova) || !format.inputValid(last)
                || (format.signExtended() && (iova < 0) != (last < 0))) {
            throw ErrnoException.of(Errno.ERANGE, "%s %s iova=0x%x lengthBytes=0x%x: outside the %d-bit input range",
                    format.name(), op, iova, lengthBytes, format.inputBits());
        }
    }

    private long tableLast(long tableIova, int level) {
        int span = format.itemShift(level) + format.indexBits(level);
        return span >= 64 ? -1L : tableIova + (1L << span) - 1;
    }

    private long signExtend(long truncated) {
        if (!format.signExtended()) {
            return truncated;
        }
        int unused = 64 - format.inputBits();
        return (truncated << unused) >> unused;
    }

    private long allocateTable(int level) {
        long bytes = Math.max(PhysicalMemory.FRAME_BYTES, format.tableBytes(level));
        long table = memory.allocate(bytes, bytes);
        tablePages += (int) (bytes >>> PhysicalMemory.FRAME_SHIFT);
        return table;
    }

    private void freeTable(long table, int level) {
        long bytes = Math.max(PhysicalMemory.FRAME_BYTES, format.tableBytes(level));
        memory.free(table, bytes);
        tablePages -= (int) (bytes >>> PhysicalMemory.FRAME_SHIFT);
    }

    private long live(long table) {
        return memory.ownerWord(table);
    }

    private void addLive(long table, int delta) {
        memory.ownerWord(table, memory.ownerWord(table) + delta);
    }
}
