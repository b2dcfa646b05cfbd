package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

/**
 * Pinned-page accounting of one "process" (iommufd-uapi.md §4.9): every pin raises its
 * pinned_vm, and, depending on the mode a mapping was made in, its user's or its mm's locked_vm,
 * checked against RLIMIT_MEMLOCK. The kernel shows these in /proc; here they are what tests and
 * tools observe. A context starts with its own; IOAS_CHANGE_PROCESS hands its charges to another.
 * Guarded by the lock of the context charging it (one context at a time).
 */
public final class PinAccounting {
    /** How a mapping is charged. */
    public enum Mode {
        /** The mapper could lock memory without limit (CAP_IPC_LOCK): no rlimit check. */
        NONE,
        /** Charged to the user's locked_vm (the /dev/iommu default). */
        USER,
        /** Charged to the process's locked_vm (VFIO compatible). */
        MM
    }

    private long limitPages;
    private long userLockedPages;
    private long mmLockedPages;
    private long pinnedPages;

    /** @param limitPages RLIMIT_MEMLOCK in pages; {@link Long#MAX_VALUE} for unlimited */
    public PinAccounting(long limitPages) {
        this.limitPages = limitPages;
    }

    /** Charges {@code pages} newly pinned pages; @throws IommufdException ENOMEM past the limit */
    void charge(Mode mode, long pages) {
        switch (mode) {
            case USER -> {
                if (userLockedPages + pages > limitPages) {
                    throw IommufdException.of(Errno.ENOMEM, "pinning %d pages: user locked_vm %d would pass RLIMIT_MEMLOCK %d pages",
                            pages, userLockedPages, limitPages);
                }
                userLockedPages += pages;
            }
            case MM -> {
                if (mmLockedPages + pages > limitPages) {
                    throw IommufdException.of(Errno.ENOMEM, "pinning %d pages: mm locked_vm %d would pass RLIMIT_MEMLOCK %d pages",
                            pages, mmLockedPages, limitPages);
                }
                mmLockedPages += pages;
            }
            case NONE -> {
            }
        }
        pinnedPages += pages;
    }

    /** Takes back a charge of {@link #charge}. */
    void uncharge(Mode mode, long pages) {
        switch (mode) {
            case USER -> userLockedPages -= pages;
            case MM -> mmLockedPages -= pages;
            case NONE -> {
            }
        }
        pinnedPages -= pages;
        if (userLockedPages < 0 || mmLockedPages < 0 || pinnedPages < 0) {
            throw new IllegalStateException("bug: pin accounting went negative");
        }
    }

    /** {@return RLIMIT_MEMLOCK in pages} */
    public long limitPages() {
        return limitPages;
    }

    void limitPages(long limitPages) {
        this.limitPages = limitPages;
    }

    /** {@return the user's locked_vm charged by this context, in pages} */
    public long userLockedPages() {
        return userLockedPages;
    }

    /** {@return the process's locked_vm (VmLck) charged by this context, in pages} */
    public long mmLockedPages() {
        return mmLockedPages;
    }

    /** {@return the process's pinned_vm (VmPin), in pages} */
    public long pinnedPages() {
        return pinnedPages;
    }
}
