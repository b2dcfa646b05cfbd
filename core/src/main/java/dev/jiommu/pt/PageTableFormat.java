package dev.jiommu.pt;

import java.util.Arrays;

/**
 * One page-table format: its geometry (levels, index bits, page sizes) and the meaning of the bits
 * of its entries. Formats hold no state; {@link PageTable} (software, the driver side) and
 * {@link PageTableWalker} (hardware, the emulator side) run one algorithm over any of them.
 *
 * <p>Levels are counted from the leaf end, as the kernel's generic_pt does: level 0 holds the
 * smallest pages, level {@code levels() - 1} is the top table. {@link #hardwareLevel} gives the
 * manual's number for reports. Addresses handed to and returned by the entry methods are byte
 * addresses; entry values are the raw 64-bit little-endian words.
 *
 * <p>A leaf may occupy several consecutive slots of its table when the format has contiguous pages
 * (AMD v1's size-encoded leaves): every slot then holds the same entry, and
 * {@link #leafShift} exceeds {@link #itemShift}.
 */
public abstract class PageTableFormat {
    /** Entry kinds returned by {@link #kind}. */
    public static final int EMPTY = 0;
    public static final int TABLE = 1;
    public static final int LEAF = 2;

    /** Permission bits granted by an entry, in the bit positions of {@link Access}. */
    public static final int PERM_READ = Access.READ;
    public static final int PERM_WRITE = Access.WRITE;
    public static final int PERM_EXEC = Access.EXEC;
    /** Unprivileged requests are allowed (x86 U/S, Arm AP[1]). */
    public static final int PERM_USER = 1 << 3;
    public static final int PERM_ALL = PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER;

    private final String name;
    private final int levels;
    private final int[] itemShift;
    private final int[] indexBits;
    private final long[] leafSizes;
    private final int inputBits;
    private final int outputBits;
    private final boolean signExtended;
    private final long pageSizes;
    private final int[] levelOfShift = new int[64];

    /**
     * @param itemShift    per level, log2 of the bytes one entry of that level translates
     * @param indexBits    per level, log2 of the number of entries of a table of that level
     * @param leafSizes    per level, the page sizes a leaf there may have, as a bitmap (bit n = 2^n bytes)
     * @param signExtended whether addresses above the top bit are its sign extension (x86 canonical form)
     */
    protected PageTableFormat(String name, int[] itemShift, int[] indexBits, long[] leafSizes, int outputBits,
                              boolean signExtended) {
        this.name = name;
        this.levels = itemShift.length;
        if (indexBits.length != levels || leafSizes.length != levels || levels < 1 || levels > 6) {
            throw new IllegalArgumentException(name + ": inconsistent level arrays");
        }
        this.itemShift = itemShift.clone();
        this.indexBits = indexBits.clone();
        this.leafSizes = leafSizes.clone();
        for (int l = 1; l < levels; l++) {
            if (itemShift[l] != itemShift[l - 1] + indexBits[l - 1]) {
                throw new IllegalArgumentException(name + ": level " + l + " does not start where level " + (l - 1) + " ends");
            }
        }
        this.inputBits = itemShift[levels - 1] + indexBits[levels - 1];
        this.outputBits = outputBits;
        this.signExtended = signExtended;
        long sizes = 0;
        Arrays.fill(levelOfShift, -1);
        for (int l = 0; l < levels; l++) {
            sizes |= leafSizes[l];
            for (long s = leafSizes[l]; s != 0; s &= s - 1) {
                int shift = Long.numberOfTrailingZeros(s);
                if (levelOfShift[shift] != -1) {
                    throw new IllegalArgumentException(name + ": page size 2^" + shift + " at two levels");
                }
                if (shift < itemShift[l] || shift >= itemShift[l] + indexBits[l]) {
                    throw new IllegalArgumentException(name + ": page size 2^" + shift + " does not fit level " + l);
                }
                levelOfShift[shift] = l;
            }
        }
        this.pageSizes = sizes;
    }

    // ---- geometry ----------------------------------------------------------------------------

    /** {@return a name such as "vtd-ss-4level" or "arm-lpae-s2-4k-ias40"} */
    public final String name() {
        return name;
    }

    public final int levels() {
        return levels;
    }

    public final int topLevel() {
        return levels - 1;
    }

    /** {@return log2 of the bytes one entry of {@code level} translates} */
    public final int itemShift(int level) {
        return itemShift[level];
    }

    /** {@return log2 of the number of entries of a table of {@code level}} */
    public final int indexBits(int level) {
        return indexBits[level];
    }

    /** {@return the index into a table of {@code level} that translates {@code iova}} */
    public final int index(long iova, int level) {
        return (int) ((iova >>> itemShift[level]) & ((1L << indexBits[level]) - 1));
    }

    /** {@return the bytes a table of {@code level} occupies (at least one 4 KiB frame is allocated)} */
    public final long tableBytes(int level) {
        return 8L << indexBits[level];
    }

    /** {@return the page sizes a leaf at {@code level} may have, as a bitmap} */
    public final long leafSizes(int level) {
        return leafSizes[level];
    }

    /** {@return every page size of the format, as a bitmap (the kernel's pgsize_bitmap)} */
    public final long pageSizes() {
        return pageSizes;
    }

    /** {@return the level that holds leaves of 2^{@code shift} bytes, or -1} */
    public final int levelOfPageShift(int shift) {
        return shift < 0 || shift > 63 ? -1 : levelOfShift[shift];
    }

    /** {@return the number of IOVA bits translated (not counting sign extension)} */
    public final int inputBits() {
        return inputBits;
    }

    /** {@return the number of output address bits an entry can hold} */
    public final int outputBits() {
        return outputBits;
    }

    /** {@return whether IOVAs are sign-extended from bit {@code inputBits() - 1} (x86 canonical)} */
    public final boolean signExtended() {
        return signExtended;
    }

    /** {@return whether {@code iova} is inside the range this format translates} */
    public final boolean inputValid(long iova) {
        if (inputBits == 64) {
            return true;
        }
        if (signExtended) {
            long shifted = iova >> (inputBits - 1);
            return shifted == 0 || shifted == -1;
        }
        return (iova >>> inputBits) == 0;
    }

    /** {@return the manual's number for {@code level}: VT-d/x86/AMD count up from 1, Arm down to 3} */
    public int hardwareLevel(int level) {
        return level + 1;
    }

    // ---- entries -----------------------------------------------------------------------------

    /** {@return EMPTY, TABLE or LEAF for {@code entry} found at {@code level}} */
    public abstract int kind(long entry, int level);

    /** {@return the physical address of the table a TABLE entry points to} */
    public abstract long tableAddress(long entry);

    /** {@return the level of the table a TABLE entry at {@code level} points to (AMD v1 can skip levels)} */
    public int childLevel(long entry, int level) {
        return level - 1;
    }

    /** {@return the entry at {@code level} that points to the table at {@code tableAddress}} */
    public abstract long tableEntry(long tableAddress, int level);

    /** {@return the leaf entry at {@code level} mapping 2^{@code sizeShift} bytes at {@code pa} with {@code prot}} */
    public abstract long leafEntry(long pa, int sizeShift, int level, int prot);

    /** {@return the output address of the first byte of the page a LEAF entry maps} */
    public abstract long leafAddress(long entry, int level);

    /** {@return log2 of the size of the page a LEAF entry at {@code level} maps} */
    public int leafShift(long entry, int level) {
        return itemShift[level];
    }

    /** {@return the {@link Prot} flags a LEAF entry encodes (for attribute round trips)} */
    public abstract int leafProt(long entry, int level);

    // ---- dirty tracking ----------------------------------------------------------------------

    /** {@return whether a LEAF entry records a write since it was last cleaned} */
    public abstract boolean dirty(long entry);

    /** {@return the entry marked write-clean} */
    public abstract long cleanEntry(long entry);

    /** {@return the entry as hardware leaves it after a write (dirty)} */
    public abstract long dirtyEntry(long entry);

    // ---- what the hardware walker checks ------------------------------------------------------

    /** {@return the PERM_* bits a TABLE entry allows for the walk below it} */
    public int tablePerms(long entry, int level) {
        return PERM_ALL;
    }

    /** {@return the PERM_* bits a LEAF entry grants} */
    public abstract int leafPerms(long entry, int level);

    /** {@return the entry with its accessed flag set, or the entry itself if the format has none there} */
    public long accessedEntry(long entry, int level) {
        return entry;
    }

    /** {@return whether using this LEAF entry faults unless hardware sets its access flag (Arm AF = 0)} */
    public boolean accessFlagFault(long entry) {
        return false;
    }

    /** {@return whether a write may proceed on this read-only LEAF by marking it dirty (Arm DBM)} */
    public boolean writableWhenDirtied(long entry) {
        return false;
    }

    /** {@return whether {@code entry} at {@code level} sets bits the hardware treats as reserved} */
    public boolean reservedBitsSet(long entry, int level) {
        return false;
    }

    @Override
    public String toString() {
        return name;
    }
}
