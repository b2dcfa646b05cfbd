package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PinnedPages;
import dev.jiommu.mem.UserMemory;

import static dev.jiommu.mem.UserMemory.PAGE_BYTES;
import static dev.jiommu.mem.UserMemory.PAGE_SHIFT;

/**
 * The backing of one MAP or MAP_FILE: a byte range of a user address space (or file), shared by
 * every area COPY makes from it, in any IOAS. Each page is pinned at most once, however many
 * domains, areas and accesses use it: {@code users[i]} counts them, the page is pinned when it goes
 * from 0 to 1 and unpinned when it comes back (the kernel's iopt_pages).
 *
 * <p>Page indexes count CPU pages from the page holding {@link #start()}. Guarded by the context lock.
 */
final class IoptPages {
    /** Pages per chunk of per-page state. */
    private static final int CHUNK_SHIFT = 12;
    private static final int CHUNK_PAGES = 1 << CHUNK_SHIFT;

    private final UserMemory source;
    private final long start;
    private final long lengthBytes;
    private final boolean writable;
    private final PinAccounting.Mode accountingMode;
    /** Who is charged for the pins (null for device memory, which nobody pins); IOAS_CHANGE_PROCESS moves it. */
    private PinAccounting accounting;
    private final long firstPageAddress;
    /** How many CPU pages the backing spans. */
    private final int pageCount;
    /*
     * Per-page state in chunks made on first use: a backing may span far more VA than is ever
     * pinned (a map into an IOAS without a domain pins nothing and checks no VA), so the memory
     * this takes follows the pinned pages, not the length.
     */
    private final long[][] physical;
    private final int[][] users;
    /** Areas (in any IOAS) that use this backing. */
    private int areaRefs;

    IoptPages(UserMemory source, long start, long lengthBytes, boolean writable, PinAccounting accounting, PinAccounting.Mode mode) {
        this.source = source;
        this.start = start;
        this.lengthBytes = lengthBytes;
        this.writable = writable;
        this.accounting = accounting;
        this.accountingMode = mode;
        this.firstPageAddress = start & -PAGE_BYTES;
        long lastPage = (start + lengthBytes - 1) >>> PAGE_SHIFT;
        long count = lastPage - (firstPageAddress >>> PAGE_SHIFT) + 1;
        if (count > Integer.MAX_VALUE) {
            // Page indexes are ints: 8 TiB per mapping. The kernel would take more, but no caller has that much memory.
            throw IommufdException.of(Errno.ENOMEM, "map of 0x%x bytes: more than 2^31 pages", lengthBytes);
        }
        this.pageCount = (int) count;
        int chunks = (int) ((count + CHUNK_PAGES - 1) >>> CHUNK_SHIFT);
        this.physical = new long[chunks][];
        this.users = new int[chunks][];
    }


    private int usersOf(int index) {
        int[] chunk = users[index >>> CHUNK_SHIFT];
        return chunk == null ? 0 : chunk[index & (CHUNK_PAGES - 1)];
    }

    private void set(int index, int userCount, long physicalAddress) {
        int c = index >>> CHUNK_SHIFT;
        if (users[c] == null) {
            // The last chunk holds only the pages there are: a one-page map costs one slot, not a chunk.
            int length = Math.min(CHUNK_PAGES, pageCount - (c << CHUNK_SHIFT));
            users[c] = new int[length];
            physical[c] = new long[length];
        }
        users[c][index & (CHUNK_PAGES - 1)] = userCount;
        physical[c][index & (CHUNK_PAGES - 1)] = physicalAddress;
    }

    private void addUsers(int index, int delta) {
        users[index >>> CHUNK_SHIFT][index & (CHUNK_PAGES - 1)] += delta;
    }

    UserMemory source() {
        return source;
    }

    /** {@return the user address (VA or file offset) of the first byte} */
    long start() {
        return start;
    }

    long lengthBytes() {
        return lengthBytes;
    }

    boolean writable() {
        return writable;
    }

    /** {@return the index of the page holding byte {@code offset} of this backing} */
    int pageOf(long offset) {
        return (int) ((start - firstPageAddress + offset) >>> PAGE_SHIFT);
    }

    /** {@return the sub-page offset of byte {@code offset} of this backing} */
    long offsetInPage(long offset) {
        return (start + offset) & (PAGE_BYTES - 1);
    }

    /** {@return the physical address of pinned page {@code index}} */
    long physical(int index) {
        if (usersOf(index) == 0) {
            throw new IllegalStateException("bug: page " + index + " of " + this + " read while unpinned");
        }
        return physical[index >>> CHUNK_SHIFT][index & (CHUNK_PAGES - 1)];
    }

    int users(int index) {
        return usersOf(index);
    }

    /** {@return the number of pages this backing has pinned right now} */
    long pinnedPages() {
        long n = 0;
        for (int[] chunk : users) {
            if (chunk != null) {
                for (int u : chunk) {
                    if (u > 0) {
                        n++;
                    }
                }
            }
        }
        return n;
    }

    PinAccounting accounting() {
        return accounting;
    }

    PinAccounting.Mode accountingMode() {
        return accountingMode;
    }

    /** Charges are now {@code owner}'s (the caller moved the pinned counts already). */
    void accounting(PinAccounting owner) {
        this.accounting = owner;
    }

    void addAreaRef() {
        areaRefs++;
    }

    /** Drops an area's reference; {@return whether none is left} */
    boolean dropAreaRef() {
        return --areaRefs == 0;
    }

    /**
     * Takes one user on pages [first, last], pinning the ones nobody used yet, or takes none.
     *
     * @throws IommufdException what pinning or accounting refused (EFAULT, EINVAL, EPERM, ENOMEM)
     */
    void acquire(int first, int last) {
        int i = first;
        try {
            while (i <= last) {
                if (usersOf(i) > 0) {
                    addUsers(i, +1);
                    i++;
                    continue;
                }
                int runEnd = i;
                while (runEnd < last && usersOf(runEnd + 1) == 0) {
                    runEnd++;
                }
                pinRun(i, runEnd);
                i = runEnd + 1;
            }
        } catch (ErrnoException e) {
            if (i > first) {
                release(first, i - 1);
            }
            throw IommufdException.from(e);
        }
    }

    /** Drops one user on pages [first, last], unpinning each page whose last user this was. */
    void release(int first, int last) {
        int i = first;
        while (i <= last) {
            if (usersOf(i) <= 0) {
                throw new IllegalStateException("bug: releasing unused page " + i + " of " + this);
            }
            if (usersOf(i) > 1) {
                addUsers(i, -1);
                i++;
                continue;
            }
            int runEnd = i;
            while (runEnd < last && usersOf(runEnd + 1) == 1) {
                runEnd++;
            }
            for (int k = i; k <= runEnd; k++) {
                set(k, 0, 0);
            }
            long pages = runEnd - i + 1;
            source.unpin(firstPageAddress + ((long) i << PAGE_SHIFT), pages << PAGE_SHIFT);
            if (accounting != null) {
                accounting.uncharge(accountingMode, pages);
            }
            i = runEnd + 1;
        }
    }

    private void pinRun(int first, int last) {
        long pages = last - first + 1;
        PinnedPages pinned = source.pin(firstPageAddress + ((long) first << PAGE_SHIFT), pages << PAGE_SHIFT, writable);
        try {
            if (accounting != null) {
                accounting.charge(accountingMode, pages);
            }
        } catch (IommufdException e) {
            source.unpin(pinned);
            throw e;
        }
        for (int k = first; k <= last; k++) {
            set(k, 1, pinned.physicalAddress(k - first));
        }
    }

    @Override
    public String toString() {
        return String.format("pages[start=0x%x lengthBytes=0x%x%s]", start, lengthBytes, writable ? " writable" : "");
    }
}
