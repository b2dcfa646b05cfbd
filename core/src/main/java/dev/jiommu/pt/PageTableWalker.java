package dev.jiommu.pt;

import dev.jiommu.mem.BadPhysicalAddressException;
import dev.jiommu.mem.PhysicalMemory;

/**
 * The hardware side of a page table: walks a table in physical memory the way an IOMMU does for
 * one request, checks permissions along the way, sets accessed and dirty state atomically when the
 * unit is allowed to, and reports where and why a walk faulted.
 *
 * <p>It trusts nothing in the table: a pointer to memory that does not exist, a reserved encoding,
 * or a level pointer that does not descend ends the walk with a fault, never an exception. A walk
 * reads at most one entry per level, so a hostile table cannot make it loop. Allocation-free: the
 * caller passes a reusable {@link WalkResult}.
 */
public final class PageTableWalker {
    /** Hardware may set accessed flags (VT-d SSADE, Arm HA, AMD HAD, always for x86 first stage). */
    public static final int UPDATE_ACCESSED = 1;
    /** Hardware may record writes as dirty (VT-d SSADE, Arm HD, AMD HAD, always for x86 first stage). */
    public static final int UPDATE_DIRTY = 1 << 1;

    private final PhysicalMemory memory;

    public PageTableWalker(PhysicalMemory memory) {
        this.memory = memory;
    }

    /**
     * Translates {@code iova} for {@code access} ({@link Access} bits) through the table of
     * {@code format} rooted at {@code rootAddress}.
     *
     * @param flags {@link #UPDATE_ACCESSED} and {@link #UPDATE_DIRTY}
     * @return the outcome, also in {@code out.status()}
     */
    public WalkStatus walk(PageTableFormat format, long rootAddress, long iova, int access, int flags, WalkResult out) {
        while (true) {
            WalkStatus status = walkOnce(format, rootAddress, iova, access, flags, out);
            if (status != null) {
                return status;
            }
            // An entry changed under an accessed/dirty update: walk again, as hardware retries its locked update.
        }
    }

    /** {@return the outcome, or null when an entry changed between reading it and updating it} */
    private WalkStatus walkOnce(PageTableFormat format, long rootAddress, long iova, int access, int flags, WalkResult out) {
        out.reset();
        int level = format.topLevel();
        if (!format.inputValid(iova)) {
            return fault(out, format, level, format.signExtended() ? WalkStatus.NON_CANONICAL : WalkStatus.ADDRESS_SIZE);
        }
        int required = Access.requiredPerms(access);
        int perms = PageTableFormat.PERM_ALL;
        long table = rootAddress;
        while (true) {
            long slot = table + ((long) format.index(iova, level) << 3);
            out.entryAddress = slot;
            long entry;
            try {
                entry = memory.read64(slot);
            } catch (BadPhysicalAddressException e) {
                return fault(out, format, level, WalkStatus.TABLE_FETCH_ABORT);
            }
            out.tableReads++;
            out.entry = entry;
            int kind = format.kind(entry, level);
            if (kind == PageTableFormat.EMPTY) {
                return fault(out, format, level, WalkStatus.NOT_PRESENT);
            }
            if (format.reservedBitsSet(entry, level)) {
                return fault(out, format, level, WalkStatus.RESERVED_BITS);
            }
            if (kind == PageTableFormat.TABLE) {
                int child = format.childLevel(entry, level);
                if (child < 0 || child >= level) {
                    return fault(out, format, level, WalkStatus.RESERVED_BITS);
                }
                if (child < level - 1 && skippedBitsSet(format, iova, child, level)) {
                    return fault(out, format, level, WalkStatus.SKIPPED_BITS_NONZERO);
                }
                perms &= format.tablePerms(entry, level);
                if ((flags & UPDATE_ACCESSED) != 0 && !update(slot, entry, format, level, false)) {
                    return null;
                }
                table = format.tableAddress(entry);
                // The usual step, one level down, written so that the next slot's address does not wait
                // for this entry's NextLevel bits (AMD v1): the branch is predicted, a data dependency is not.
                if (child == level - 1) {
                    level--;
                } else {
                    level = child;
                }
                continue;
            }
            if (format.accessFlagFault(entry) && (flags & UPDATE_ACCESSED) == 0) {
                return fault(out, format, level, WalkStatus.ACCESS_FLAG);
            }
            int tablePerms = perms;
            perms &= format.leafPerms(entry, level);
            boolean write = (access & Access.WRITE) != 0;
            int missing = required & ~perms;
            // Writable-clean (Arm DBM): the dirty update below grants the write, but only the leaf's own
            // read-only state; a table above that withholds write (APTable) still faults.
            if (missing == PageTableFormat.PERM_WRITE && (tablePerms & PageTableFormat.PERM_WRITE) != 0
                    && (flags & UPDATE_DIRTY) != 0 && format.writableWhenDirtied(entry)) {
                missing = 0;
                perms |= PageTableFormat.PERM_WRITE;
            }
            if (missing != 0) {
                out.perms = perms; // what was granted, so an IOMMU can name the missing right in its fault record
                return fault(out, format, level, WalkStatus.PERMISSION);
            }
            if ((flags & (UPDATE_ACCESSED | UPDATE_DIRTY)) != 0) {
                boolean dirty = write && (flags & UPDATE_DIRTY) != 0;
                if (!update(slot, entry, format, level, dirty)) {
                    return null;
                }
                entry = updated(entry, format, level, dirty);
            }
            int leafShift = format.leafShift(entry, level);
            out.entry = entry;
            out.status = WalkStatus.OK;
            out.leafShift = leafShift;
            out.outputAddress = format.leafAddress(entry, level) + (iova & ((1L << leafShift) - 1));
            out.perms = perms;
            out.level = level;
            out.hardwareLevel = format.hardwareLevel(level);
            return WalkStatus.OK;
        }
    }

    /** Sets accessed (and dirty) state with compare-and-set; {@return false if the entry changed meanwhile} */
    private boolean update(long slot, long entry, PageTableFormat format, int level, boolean dirty) {
        long updated = updated(entry, format, level, dirty);
        return updated == entry || memory.compareAndSet64(slot, entry, updated);
    }

    private static long updated(long entry, PageTableFormat format, int level, boolean dirty) {
        long updated = format.accessedEntry(entry, level);
        return dirty ? format.dirtyEntry(updated) : updated;
    }

    private static boolean skippedBitsSet(PageTableFormat format, long iova, int child, int level) {
        for (int l = child + 1; l < level; l++) {
            if (format.index(iova, l) != 0) {
                return true;
            }
        }
        return false;
    }

    private static WalkStatus fault(WalkResult out, PageTableFormat format, int level, WalkStatus status) {
        out.status = status;
        out.level = level;
        out.hardwareLevel = format.hardwareLevel(level);
        return status;
    }
}
