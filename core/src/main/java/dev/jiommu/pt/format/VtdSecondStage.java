package dev.jiommu.pt.format;

import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;

/**
 * Intel VT-d second-stage (and legacy second-level) paging, 3, 4 or 5 levels of 512 entries
 * covering 39, 48 or 57 input bits (VT-d 4.1 §9.8; iommu-hardware.md §1.4).
 *
 * <p>No present bit: an entry is present when R or W is set. R and W gate every level. PS marks a
 * 2 MiB leaf at level 1 or a 1 GiB leaf at level 2; it is reserved above. A (bit 8) and D (bit 9)
 * are hardware-maintained only when the PASID entry enables SSADE.
 */
public final class VtdSecondStage extends PageTableFormat {
    public static final long R = 1L;
    public static final long W = 1L << 1;
    /** Page size: the entry is a leaf above level 0. */
    public static final long PS = 1L << 7;
    public static final long A = 1L << 8;
    public static final long D = 1L << 9;
    /** Snoop: force coherent DMA (only with ECAP.SC). */
    public static final long SNP = 1L << 11;
    /** Bits [51:12]: the next table or the page frame. */
    public static final long ADDR_MASK = 0x000F_FFFF_FFFF_F000L;

    /** @param levels 3, 4 or 5 (SAGAW / AGAW 39, 48 or 57 bits) */
    public VtdSecondStage(int levels) {
        super("vtd-ss-" + levels + "level", Geometry.itemShifts(12, 9, levels), Geometry.uniform(9, levels),
                Geometry.sizesAtLevels(levels, 12, 21, 30), 52, false);
        if (levels < 3 || levels > 5) {
            throw new IllegalArgumentException("VT-d second stage has 3, 4 or 5 levels, not " + levels);
        }
    }

    @Override
    public int kind(long entry, int level) {
        if ((entry & (R | W)) == 0) {
            return EMPTY;
        }
        return level == 0 || (entry & PS) != 0 ? LEAF : TABLE;
    }

    @Override
    public long tableAddress(long entry) {
        return entry & ADDR_MASK;
    }

    @Override
    public long tableEntry(long tableAddress, int level) {
        return (tableAddress & ADDR_MASK) | R | W;
    }

    @Override
    public long leafEntry(long pa, int sizeShift, int level, int prot) {
        long entry = (pa & ADDR_MASK) | (level > 0 ? PS : 0);
        if ((prot & Prot.READ) != 0) {
            entry |= R;
        }
        if ((prot & Prot.WRITE) != 0) {
            entry |= W;
        }
        if ((prot & Prot.CACHE) != 0) {
            entry |= SNP;
        }
        return entry;
    }

    @Override
    public long leafAddress(long entry, int level) {
        return entry & ADDR_MASK & -(1L << itemShift(level));
    }

    @Override
    public int leafProt(long entry, int level) {
        return ((entry & R) != 0 ? Prot.READ : 0) | ((entry & W) != 0 ? Prot.WRITE : 0) | ((entry & SNP) != 0 ? Prot.CACHE : 0);
    }

    @Override
    public boolean dirty(long entry) {
        return (entry & D) != 0;
    }

    @Override
    public long cleanEntry(long entry) {
        return entry & ~D;
    }

    @Override
    public long dirtyEntry(long entry) {
        return entry | D;
    }

    @Override
    public int tablePerms(long entry, int level) {
        return rw(entry) | PERM_EXEC | PERM_USER;
    }

    @Override
    public int leafPerms(long entry, int level) {
        return rw(entry) | PERM_EXEC | PERM_USER;
    }

    @Override
    public long accessedEntry(long entry, int level) {
        return entry | A;
    }

    @Override
    public boolean reservedBitsSet(long entry, int level) {
        if ((entry & PS) != 0 && level > 2) {
            return true;
        }
        // A large leaf's frame must be aligned to its size (QEMU checks bits 20:12 and 29:12).
        return level > 0 && (entry & PS) != 0 && (entry & ADDR_MASK & ((1L << itemShift(level)) - 1)) != 0;
    }

    private static int rw(long entry) {
        return ((entry & R) != 0 ? PERM_READ : 0) | ((entry & W) != 0 ? PERM_WRITE : 0);
    }
}
