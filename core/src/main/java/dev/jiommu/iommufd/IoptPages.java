package dev.jiommu.iommufd;

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
    private final UserMemory source;
    private final long start;
    private final long lengthBytes;
    private final boolean writable;
    private final PinAccounting.Mode accountingMode;
    /** Who is charged for the pins (null for device memory, which nobody pins); IOAS_CHANGE_PROCESS moves it. */
    private PinAccounting accounting;
    private final long firstPageAddress;
    private final long[] physical;
    private final int[] users;
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
        int count = Math.toIntExact(lastPage - (firstPageAddress >>> PAGE_SHIFT) + 1);
        this.physical = new long[count];
        this.users = new int[count];
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
        if (users[index] == 0) {
            throw new IllegalStateException("bug: page " + index + " of " + this + " read while unpinned");
        }
        return physical[index];
    }

    int users(int index) {
        return users[index];
    }

    /** {@return the number of pages this backing has pinned right now} */
    long pinnedPages() {
        long n = 0;
        for (int u : users) {
            if (u > 0) {
                n++;
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
                if (users[i] > 0) {
                    users[i]++;
                    i++;
                    continue;
                }
                int runEnd = i;
                while (runEnd < last && users[runEnd + 1] == 0) {
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
            if (users[i] <= 0) {
                throw new IllegalStateException("bug: releasing unused page " + i + " of " + this);
            }
            if (users[i] > 1) {
                users[i]--;
                i++;
                continue;
            }
            int runEnd = i;
            while (runEnd < last && users[runEnd + 1] == 1) {
                runEnd++;
            }
            for (int k = i; k <= runEnd; k++) {
                users[k] = 0;
                physical[k] = 0;
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
            physical[k] = pinned.physicalAddress(k - first);
            users[k] = 1;
        }
    }

    @Override
    public String toString() {
        return String.format("pages[start=0x%x lengthBytes=0x%x%s]", start, lengthBytes, writable ? " writable" : "");
    }
}
