package dev.jiommu.pt.format;

import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;

/**
 * The x86-64 long-mode paging format, as VT-d first-stage tables and AMD v2 (guest) tables use it:
 * 4 or 5 levels of 512 entries (iommu-hardware.md §1.4, §1.6).
 *
 * <p>P present; R/W, U/S and XD gate every level; PS marks a 2 MiB (PDE) or 1 GiB (PDPE) leaf, whose
 * bit 12 is PAT, not address. A and D are always hardware-maintained. Linux builds tables with
 * P|RW|US|A and leaves with P|US|A plus RW|D when writable, so a fresh writable page reads dirty.
 * VT-d uses sign-extended (canonical) input; AMD's PASID-0 variants use 47 or 56 unextended bits.
 */
public final class X86_64 extends PageTableFormat {
    public static final long P = 1L;
    public static final long RW = 1L << 1;
    public static final long US = 1L << 2;
    public static final long A = 1L << 5;
    public static final long D = 1L << 6;
    public static final long PS = 1L << 7;
    public static final long XD = 1L << 63;
    /** Bits [51:12]: the next table or the 4 KiB page frame. */
    public static final long ADDR_MASK = 0x000F_FFFF_FFFF_F000L;
    /** Bits [51:13]: a large page's frame (bit 12 is PAT there). */
    private static final long LARGE_ADDR_MASK = 0x000F_FFFF_FFFF_E000L;

    /**
     * @param levels       4 (48-bit) or 5 (57-bit)
     * @param signExtended true for canonical VT-d input; false for AMD's unextended 47/56-bit variant
     */
    public X86_64(int levels, boolean signExtended) {
        super("x86-64-" + levels + "level" + (signExtended ? "" : "-unextended"), Geometry.itemShifts(12, 9, levels),
                indexBits(levels, signExtended), Geometry.sizesAtLevels(levels, 12, 21, 30), 52, signExtended);
    }

    private static int[] indexBits(int levels, boolean signExtended) {
        if (levels != 4 && levels != 5) {
            throw new IllegalArgumentException("x86-64 paging has 4 or 5 levels, not " + levels);
        }
        int[] bits = Geometry.uniform(9, levels);
        if (!signExtended) {
            bits[levels - 1] = 8; // 47 or 56 input bits: only the lower half of the top table
        }
        return bits;
    }

    @Override
    public int kind(long entry, int level) {
        if ((entry & P) == 0) {
            return EMPTY;
        }
        return level == 0 || ((entry & PS) != 0 && level <= 2) ? LEAF : TABLE;
    }

    @Override
    public long tableAddress(long entry) {
        return entry & ADDR_MASK;
    }

    @Override
    public long tableEntry(long tableAddress, int level) {
        return (tableAddress & ADDR_MASK) | P | RW | US | A;
    }

    @Override
    public long leafEntry(long pa, int sizeShift, int level, int prot) {
        long entry = (pa & ADDR_MASK) | P | A | (level > 0 ? PS : 0);
        if ((prot & Prot.PRIV) == 0) {
            entry |= US;
        }
        if ((prot & Prot.WRITE) != 0) {
            entry |= RW | D;
        }
        if ((prot & Prot.NOEXEC) != 0) {
            entry |= XD;
        }
        return entry;
    }

    @Override
    public long leafAddress(long entry, int level) {
        return (level == 0 ? entry & ADDR_MASK : entry & LARGE_ADDR_MASK) & -(1L << itemShift(level));
    }

    @Override
    public int leafProt(long entry, int level) {
        return Prot.READ | ((entry & RW) != 0 ? Prot.WRITE : 0) | ((entry & XD) != 0 ? Prot.NOEXEC : 0)
                | ((entry & US) == 0 ? Prot.PRIV : 0);
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
        return perms(entry);
    }

    @Override
    public int leafPerms(long entry, int level) {
        return perms(entry);
    }

    @Override
    public long accessedEntry(long entry, int level) {
        return entry | A;
    }

    @Override
    public boolean reservedBitsSet(long entry, int level) {
        if ((entry & PS) != 0 && level > 2) {
            return true; // PS is reserved in PML4E and PML5E
        }
        // QEMU's masks: bits 20:13 of a 2 MiB leaf and 29:13 of a 1 GiB leaf must be zero.
        return level > 0 && (entry & PS) != 0 && (entry & LARGE_ADDR_MASK & ((1L << itemShift(level)) - 1)) != 0;
    }

    private static int perms(long entry) {
        return PERM_READ | ((entry & RW) != 0 ? PERM_WRITE : 0) | ((entry & XD) == 0 ? PERM_EXEC : 0)
                | ((entry & US) != 0 ? PERM_USER : 0);
    }
}
