package dev.jiommu.pt.format;

import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;

/**
 * AMD-Vi v1 host page tables: 512-entry tables, one level per 9 bits above a 4 KiB granule, the
 * number of levels being the DTE's Mode (iommu-hardware.md §1.6).
 *
 * <p>PR present; IR/IW gate every level. An entry's NextLevel field [11:9] says what it is: 1–6 a
 * pointer to a table of that level (AMD numbers from 1, so our level + 1; levels may be skipped when
 * the skipped index bits are zero), 0 a leaf of the level's natural size, 7 a leaf whose size is
 * encoded in its address: for 2^k bytes the address bits below k−1 (down to the granule) are ones
 * and bit k−1 is zero. Such a leaf is replicated in every slot it covers. Every power of two from the
 * granule up is a page size, except 512 GiB (a hardware erratum); the top level holds no leaf.
 */
public class AmdV1 extends PageTableFormat {
    public static final long PR = 1L;
    public static final long A = 1L << 5;
    public static final long D = 1L << 6;
    static final int NEXT_LEVEL_SHIFT = 9;
    static final long NEXT_LEVEL_MASK = 7L << NEXT_LEVEL_SHIFT;
    /** NextLevel value of a leaf whose size is encoded in its address. */
    public static final int NEXT_LEVEL_SIZED = 7;
    /** Bits [51:12]: the address field (in granule units). */
    public static final long OA_MASK = 0x000F_FFFF_FFFF_F000L;
    public static final long FC = 1L << 60;
    public static final long IR = 1L << 61;
    public static final long IW = 1L << 62;

    private static final int OA_SHIFT = 12;
    private static final long NO_512G = ~(1L << 39);

    private final int granuleShift;

    /** @param levels the DTE Mode, 2 to 6 (a one-level table could hold no leaf) */
    public AmdV1(int levels) {
        this("amd-v1-" + levels + "level", 12, levels, 52);
    }

    protected AmdV1(String name, int granuleShift, int levels, int outputBits) {
        super(name, Geometry.itemShifts(granuleShift, 9, checkLevels(levels)), indexBits(granuleShift, levels),
                leafSizes(granuleShift, levels, outputBits), outputBits, false);
        this.granuleShift = granuleShift;
    }

    private static int checkLevels(int levels) {
        if (levels < 2 || levels > 6) {
            throw new IllegalArgumentException("AMD v1 tables have 2 to 6 levels here, not " + levels);
        }
        return levels;
    }

    private static int[] indexBits(int granuleShift, int levels) {
        int[] bits = Geometry.uniform(9, levels);
        int top = granuleShift + 9 * (levels - 1);
        bits[levels - 1] = Math.min(9, 64 - top); // mode 6 covers bits 63:57 only
        return bits;
    }

    private static long[] leafSizes(int granuleShift, int levels, int outputBits) {
        long[] sizes = new long[levels];
        for (int l = 0; l < levels - 1; l++) {
            int itemShift = granuleShift + 9 * l;
            int maxShift = Math.min(outputBits - 1, itemShift + 8);
            for (int s = itemShift; s <= maxShift; s++) {
                sizes[l] |= 1L << s;
            }
            sizes[l] &= NO_512G;
        }
        return sizes;
    }

    /** {@return log2 of the smallest page: 12, or 11 for the selftest mock} */
    public final int granuleShift() {
        return granuleShift;
    }

    static int nextLevel(long entry) {
        return (int) ((entry & NEXT_LEVEL_MASK) >>> NEXT_LEVEL_SHIFT);
    }

    @Override
    public int kind(long entry, int level) {
        if ((entry & PR) == 0) {
            return EMPTY;
        }
        int next = nextLevel(entry);
        return level == 0 || next == 0 || next == NEXT_LEVEL_SIZED ? LEAF : TABLE;
    }

    @Override
    public long tableAddress(long entry) {
        return ((entry & OA_MASK) >>> OA_SHIFT) << granuleShift;
    }

    @Override
    public int childLevel(long entry, int level) {
        return nextLevel(entry) - 1;
    }

    @Override
    public long tableEntry(long tableAddress, int level) {
        // Permissions are ANDed along the path; tables grant everything so the leaf decides.
        return PR | ((long) level << NEXT_LEVEL_SHIFT) | address(tableAddress) | IR | IW;
    }

    @Override
    public long leafEntry(long pa, int sizeShift, int level, int prot) {
        long entry = PR | address(pa);
        if (sizeShift != itemShift(level)) {
            entry |= ((long) NEXT_LEVEL_SIZED << NEXT_LEVEL_SHIFT) | ((1L << (sizeShift - granuleShift - 1)) - 1) << OA_SHIFT;
        }
        if ((prot & Prot.READ) != 0) {
            entry |= IR;
        }
        if ((prot & Prot.WRITE) != 0) {
            entry |= IW;
        }
        return entry;
    }

    @Override
    public long leafAddress(long entry, int level) {
        return (((entry & OA_MASK) >>> OA_SHIFT) << granuleShift) & -(1L << leafShift(entry, level));
    }

    @Override
    public int leafShift(long entry, int level) {
        if (nextLevel(entry) != NEXT_LEVEL_SIZED) {
            return itemShift(level);
        }
        long field = (entry & OA_MASK) >>> OA_SHIFT;
        return granuleShift + 1 + Long.numberOfTrailingZeros(~field);
    }

    @Override
    public int leafProt(long entry, int level) {
        return ((entry & IR) != 0 ? Prot.READ : 0) | ((entry & IW) != 0 ? Prot.WRITE : 0) | ((entry & FC) != 0 ? Prot.CACHE : 0);
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
        int next = nextLevel(entry);
        boolean leaf = level == 0 || next == 0 || next == NEXT_LEVEL_SIZED;
        if (!leaf) {
            return false; // the walker itself refuses a NextLevel that does not descend
        }
        if (level == topLevel()) {
            return true; // the top level cannot translate
        }
        if (level == 0 && next != 0 && next != NEXT_LEVEL_SIZED) {
            return true;
        }
        // A size-encoded leaf must be bigger than one slot and fit in its table.
        int shift = leafShift(entry, level);
        return shift < itemShift(level) || shift >= itemShift(level) + indexBits(level);
    }

    private long address(long pa) {
        return ((pa >>> granuleShift) << OA_SHIFT) & OA_MASK;
    }

    private static int rw(long entry) {
        return ((entry & IR) != 0 ? PERM_READ : 0) | ((entry & IW) != 0 ? PERM_WRITE : 0);
    }
}
