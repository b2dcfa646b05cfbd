package dev.jiommu.pt.format;

import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;

import java.util.Locale;

/**
 * Arm VMSAv8-64 (LPAE) translation tables as an SMMUv3 walks them, stage 1 (a CD's TTB0) or
 * stage 2 (an STE's S2TTB), with a 4, 16 or 64 KiB granule, an input size (IAS, T0SZ = 64 − IAS)
 * and an output size (OAS, the PS/IPS field) of at most 48 bits (iommu-hardware.md §1.5; Arm ARM
 * DDI 0487, "VMSAv8-64 translation table format descriptors").
 *
 * <p>Every level resolves granuleShift − 3 bits; the start (top) table resolves what is left of
 * the IAS and may be smaller than a granule. Arm numbers levels down from 0 at the top to 3 at the
 * pages, so our level {@code l} is Arm level {@code 3 - l}. Leaves: pages at Arm level 3 and blocks
 * of 2 MiB (Arm level 2) and 1 GiB (Arm level 1) for 4K, 32 MiB (level 2) for 16K, 512 MiB (level 2)
 * for 64K; never a block at Arm level 0, and no 64 GiB or 4 TiB blocks (those need 52-bit output).
 *
 * <p>Descriptor bits[1:0]: 0b11 is a table above Arm level 3 and a page at it, 0b01 a block, x0
 * invalid. Dirty state follows the HTTU DBM scheme: writable leaves carry DBM and are created
 * writable-dirty, cleaning makes them read-only, and hardware with HD makes them writable again on
 * the first write.
 */
public final class ArmLpae extends PageTableFormat {
    /* Implementation notes
     *
     * Concatenated stage-2 start tables follow io-pgtable-arm's rule from before 2025: when the walk
     * would start at Arm level 0 with a start table of at most 16 entries, start one level lower with
     * 2..16 granule-sized tables side by side, addressed as one table with the extra index bits (one
     * allocation, aligned to its size). Later kernels concatenate only where DDI 0487 makes it
     * mandatory (R_DXBSH, R_SRKBC). Of the self-test configurations the two rules differ for 4K with
     * IAS 40 or 42 and OAS 44 or 48 (we concatenate, they start at level 0) and for 16K with
     * IAS = OAS = 40 (they concatenate 16 tables at level 2, we start at level 1 with 16 entries).
     *
     * Invalid versus reserved. The architecture makes some encodings Translation faults (the entry is
     * invalid) and calls others RES0 or Address size faults. kind() returns EMPTY, so the walker says
     * NOT_PRESENT, for: bits[0] = 0; 0b01 at Arm level 3; a block at a level that cannot hold one
     * (Arm level 0, Arm level 1 for 16K and 64K), all of which DDI 0487 treats as Translation faults.
     * reservedBitsSet() flags, so the walker says RESERVED_BITS, an entry that is valid in type but
     * whose address field is impossible: bits [49:48] (RES0 without 52-bit addresses), bit 50 of a
     * table, address bits below the granule (RES0, or OA[51:48] on 64K, which 48-bit output cannot
     * hold), a block address not aligned to the block (RES0 bits), and any address at or above 2^OAS
     * (an Address size fault in the architecture; the walker has no separate status for it).
     *
     * Execute-never. Stage 1 NOEXEC sets PXN and UXN (bits 53, 54), as Linux does. Our permission
     * model has one EXEC bit for privileged and unprivileged requests alike, so either bit (or either
     * of PXNTable/XNTable above it) withholds EXEC: a fault where an Arm walk might allow, never the
     * reverse. Stage 2 NOEXEC sets XN[1] (bit 54) only: with FEAT_XNX, XN = 0b11 (which Linux writes)
     * would mean "executable at EL1", and 0b10 means "never" with or without FEAT_XNX. Bit 54 alone
     * decides stage-2 execute permission.
     *
     * Stage-1 table descriptors may restrict everything below them (APTable, XNTable, PXNTable; we
     * never write them, but a guest's tables may). Stage 2 has no hierarchical attributes.
     */

    /** Translation stage: stage 1 (VA to IPA/PA, ASID-tagged, AP/AttrIndx) or stage 2 (IPA to PA, S2AP/MemAttr). */
    public enum Stage { S1, S2 }

    /** Translation granule: the page size and the size of every table but the start table. */
    public enum Granule {
        SZ_4K(12), SZ_16K(14), SZ_64K(16);

        private final int shift;

        Granule(int shift) {
            this.shift = shift;
        }

        /** {@return log2 of the granule in bytes} */
        public int shift() {
            return shift;
        }

        public long bytes() {
            return 1L << shift;
        }

        /** {@return the granule of {@code bytes} bytes} */
        public static Granule ofBytes(long bytes) {
            for (Granule g : values()) {
                if (g.bytes() == bytes) {
                    return g;
                }
            }
            throw new IllegalArgumentException("no VMSAv8-64 granule of 0x" + Long.toHexString(bytes) + " bytes");
        }
    }

    /** Arm counts levels 0..3 from the start of a full 4-level walk. */
    public static final int MAX_LEVELS = 4;
    /** A stage-2 start level may concatenate at most 16 tables. */
    public static final int S2_MAX_CONCAT_TABLES = 16;

    // ---- bits [1:0], both stages --------------------------------------------------------------
    static final long TYPE_MASK = 0b11;
    /** A block (above Arm level 3). */
    public static final long TYPE_BLOCK = 0b01;
    /** A table (above Arm level 3) or a page (at Arm level 3). */
    public static final long TYPE_TABLE_OR_PAGE = 0b11;

    // ---- leaf lower attributes [11:2] -----------------------------------------------------------
    /** Stage 1 AttrIndx [4:2] (an index into the CD's MAIR) and stage 2 MemAttr [5:2] start here. */
    public static final int ATTR_SHIFT = 2;
    static final long ATTR_INDX_MASK = 0b111L << ATTR_SHIFT;
    static final long MEMATTR_MASK = 0b1111L << ATTR_SHIFT;
    /** Stage 1 AP[1]: unprivileged (EL0) access allowed. */
    public static final long AP_UNPRIV = 1L << 6;
    /** Stage 1 AP[2]: read-only. With DBM, "writable-clean". */
    public static final long AP_RDONLY = 1L << 7;
    /** Stage 2 S2AP[0]: read allowed. */
    public static final long S2AP_READ = 1L << 6;
    /** Stage 2 S2AP[1]: write allowed. With DBM, clear means "writable-clean". */
    public static final long S2AP_WRITE = 1L << 7;
    /** SH [9:8] = 0b11, inner shareable (Linux's choice for both stages). */
    public static final long SH_INNER = 0b11L << 8;
    /** Access flag: clear makes the first use fault unless hardware (HA) sets it. */
    public static final long AF = 1L << 10;
    /** Stage 1 not-global: the translation is tagged with the ASID. */
    public static final long NG = 1L << 11;

    // ---- address and upper attributes ------------------------------------------------------------
    /** Bits [47:12]: the output address (its bits below the granule or block are RES0). */
    public static final long ADDR_MASK = 0x0000_FFFF_FFFF_F000L;
    /** Dirty bit modifier: hardware with HD may turn this read-only leaf writable (and so dirty). */
    public static final long DBM = 1L << 51;
    /** Contiguous hint: never written here, ignored by the walk (a hint may be ignored). */
    public static final long CONTIGUOUS = 1L << 52;
    /** Stage 1 privileged execute-never. */
    public static final long PXN = 1L << 53;
    /** Stage 1 UXN (XN), stage 2 XN[1]: execute-never. */
    public static final long XN = 1L << 54;

    // ---- stage 1 table attributes [63:59] ---------------------------------------------------------
    public static final long PXN_TABLE = 1L << 59;
    public static final long XN_TABLE = 1L << 60;
    /** APTable[0]: no unprivileged access below this table. */
    public static final long AP_TABLE_NO_EL0 = 1L << 61;
    /** APTable[1]: no write access below this table. */
    public static final long AP_TABLE_RDONLY = 1L << 62;

    /** Bits [49:48]: RES0 in every descriptor when output addresses have at most 48 bits. */
    static final long RES0_49_48 = 0b11L << 48;
    /** Bit 50: RES0 in a table descriptor (GP, the guarded-page bit, in a stage-1 leaf). */
    static final long RES0_TABLE_50 = 1L << 50;

    /** Linux's MAIR layout: index 0 non-cacheable, 1 write-back cacheable, 2 device. */
    static final int MAIR_IDX_NC = 0;
    static final int MAIR_IDX_CACHE = 1;
    static final int MAIR_IDX_DEV = 2;
    /** Stage 2 MemAttr: outer and inner write-back, normal non-cacheable, device-nGnRE. */
    static final int MEMATTR_OIWB = 0b1111;
    static final int MEMATTR_NC = 0b0101;
    static final int MEMATTR_DEV = 0b0001;

    private final Stage stage;
    private final Granule granule;
    private final int concatenatedTables;
    /** Bits [47:granuleShift]: where a table or page address lives. */
    private final long granuleAddrMask;
    private final long outputLimit;

    /**
     * @param ias input address bits, 25 (T0SZ 39) to 48
     * @param oas output address bits, one of the PS encodings 32, 36, 40, 42, 44, 48
     */
    public ArmLpae(Stage stage, Granule granule, int ias, int oas) {
        if (ias < 25 || ias > 48) {
            throw new IllegalArgumentException("VMSAv8-64 input size must be 25..48 bits, not " + ias);
        }
        switch (oas) {
            case 32, 36, 40, 42, 44, 48 -> { } // the PS/IPS encodings up to 48 bits
            default -> throw new IllegalArgumentException("output size must be a PS encoding (32, 36, 40, 42, 44, 48), not " + oas);
        }
        int bitsPerLevel = granule.shift - 3;
        int vaBits = ias - granule.shift;
        int levels = (vaBits + bitsPerLevel - 1) / bitsPerLevel;
        int topBits = vaBits - bitsPerLevel * (levels - 1);
        boolean concatenate = stage == Stage.S2 && levels == MAX_LEVELS && (1 << topBits) <= S2_MAX_CONCAT_TABLES;
        if (concatenate) {
            levels--;
            topBits += bitsPerLevel;
        }
        int[] indexBits = Geometry.uniform(bitsPerLevel, levels);
        indexBits[levels - 1] = topBits;
        super(name(stage, granule, ias, oas), Geometry.itemShifts(granule.shift, bitsPerLevel, levels), indexBits,
                leafSizes(granule, levels), oas, false);
        this.stage = stage;
        this.granule = granule;
        this.concatenatedTables = concatenate ? 1 << (topBits - bitsPerLevel) : 1;
        this.granuleAddrMask = ADDR_MASK & -granule.bytes();
        this.outputLimit = 1L << oas;
    }

    private static String name(Stage stage, Granule granule, int ias, int oas) {
        return "arm-lpae-" + stage.name().toLowerCase(Locale.ROOT) + "-" + (granule.bytes() >>> 10) + "k-ias" + ias + "-oas" + oas;
    }

    /** Pages at our level 0; blocks one level up (2M/32M/512M); 1 GiB blocks two levels up, for 4K only. */
    private static long[] leafSizes(Granule granule, int levels) {
        return switch (granule) {
            case SZ_4K -> Geometry.sizesAtLevels(levels, 12, 21, 30);
            case SZ_16K -> Geometry.sizesAtLevels(levels, 14, 25);
            case SZ_64K -> Geometry.sizesAtLevels(levels, 16, 29);
        };
    }

    public Stage stage() {
        return stage;
    }

    public Granule granule() {
        return granule;
    }

    /** {@return the Arm number of the start level (what T0SZ/SL0 select): 0 to 3} */
    public int startLevel() {
        return hardwareLevel(topLevel());
    }

    /** {@return how many granule-sized tables the start table concatenates (1 unless stage 2 concatenates)} */
    public int concatenatedTables() {
        return concatenatedTables;
    }

    /** {@return Arm's level number: 3 for pages, counting down towards the start level} */
    @Override
    public int hardwareLevel(int level) {
        return MAX_LEVELS - 1 - level;
    }

    // ---- entries ---------------------------------------------------------------------------------

    @Override
    public int kind(long entry, int level) {
        long type = entry & TYPE_MASK;
        if (type == TYPE_TABLE_OR_PAGE) {
            return level == 0 ? LEAF : TABLE;
        }
        // 0b01 is a block only where blocks exist; elsewhere (Arm level 3, level 0, 16K/64K level 1)
        // the architecture treats it as invalid: a Translation fault, not a reserved-bits fault.
        return type == TYPE_BLOCK && level > 0 && leafSizes(level) != 0 ? LEAF : EMPTY;
    }

    @Override
    public long tableAddress(long entry) {
        return entry & granuleAddrMask;
    }

    @Override
    public long tableEntry(long tableAddress, int level) {
        return (tableAddress & granuleAddrMask) | TYPE_TABLE_OR_PAGE;
    }

    @Override
    public long leafEntry(long pa, int sizeShift, int level, int prot) {
        long entry = (pa & ADDR_MASK) | (level == 0 ? TYPE_TABLE_OR_PAGE : TYPE_BLOCK) | AF | SH_INNER;
        boolean write = (prot & Prot.WRITE) != 0;
        if (stage == Stage.S1) {
            entry |= NG | ((long) mairIndex(prot) << ATTR_SHIFT);
            // Stage 1 cannot say write-only: a writable leaf is readable too.
            entry |= write ? DBM : AP_RDONLY;
            entry |= (prot & Prot.PRIV) == 0 ? AP_UNPRIV : 0;
            entry |= (prot & Prot.NOEXEC) != 0 ? PXN | XN : 0;
        } else {
            entry |= (long) memAttr(prot) << ATTR_SHIFT;
            entry |= (prot & Prot.READ) != 0 ? S2AP_READ : 0;
            entry |= write ? S2AP_WRITE | DBM : 0;
            entry |= (prot & Prot.NOEXEC) != 0 ? XN : 0;
        }
        return entry;
    }

    private static int mairIndex(int prot) {
        return (prot & Prot.MMIO) != 0 ? MAIR_IDX_DEV : (prot & Prot.CACHE) != 0 ? MAIR_IDX_CACHE : MAIR_IDX_NC;
    }

    private static int memAttr(int prot) {
        return (prot & Prot.MMIO) != 0 ? MEMATTR_DEV : (prot & Prot.CACHE) != 0 ? MEMATTR_OIWB : MEMATTR_NC;
    }

    @Override
    public long leafAddress(long entry, int level) {
        return entry & ADDR_MASK & -(1L << itemShift(level));
    }

    @Override
    public int leafProt(long entry, int level) {
        // A DBM leaf is a writable mapping even while it reads as clean (read-only).
        boolean dbm = (entry & DBM) != 0;
        if (stage == Stage.S1) {
            int attrIndex = (int) ((entry & ATTR_INDX_MASK) >>> ATTR_SHIFT);
            return Prot.READ
                    | ((entry & AP_RDONLY) == 0 || dbm ? Prot.WRITE : 0)
                    | (attrIndex == MAIR_IDX_CACHE ? Prot.CACHE : attrIndex == MAIR_IDX_DEV ? Prot.MMIO : 0)
                    | ((entry & (PXN | XN)) != 0 ? Prot.NOEXEC : 0)
                    | ((entry & AP_UNPRIV) == 0 ? Prot.PRIV : 0);
        }
        int memAttr = (int) ((entry & MEMATTR_MASK) >>> ATTR_SHIFT);
        return ((entry & S2AP_READ) != 0 ? Prot.READ : 0)
                | ((entry & S2AP_WRITE) != 0 || dbm ? Prot.WRITE : 0)
                | (memAttr == MEMATTR_OIWB ? Prot.CACHE : memAttr == MEMATTR_DEV ? Prot.MMIO : 0)
                | ((entry & XN) != 0 ? Prot.NOEXEC : 0);
    }

    // ---- dirty tracking (HTTU with DBM) -------------------------------------------------------------

    /** {@return whether a DBM leaf is writable-dirty: S1 (AP[2]|DBM) == DBM, S2 DBM and S2AP write} */
    @Override
    public boolean dirty(long entry) {
        return stage == Stage.S1 ? (entry & (AP_RDONLY | DBM)) == DBM : (entry & (S2AP_WRITE | DBM)) == (S2AP_WRITE | DBM);
    }

    /** {@return a DBM leaf made writable-clean (S1 sets AP[2], S2 clears S2AP write); others unchanged} */
    @Override
    public long cleanEntry(long entry) {
        if ((entry & DBM) == 0) {
            return entry;
        }
        return stage == Stage.S1 ? entry | AP_RDONLY : entry & ~S2AP_WRITE;
    }

    /** {@return a DBM leaf as HD hardware leaves it after a write; a leaf without DBM is not tracked} */
    @Override
    public long dirtyEntry(long entry) {
        if ((entry & DBM) == 0) {
            return entry;
        }
        return stage == Stage.S1 ? entry & ~AP_RDONLY : entry | S2AP_WRITE;
    }

    // ---- what the hardware walker checks ------------------------------------------------------------

    @Override
    public int tablePerms(long entry, int level) {
        if (stage == Stage.S2) {
            return PERM_ALL;
        }
        int perms = PERM_ALL;
        if ((entry & AP_TABLE_RDONLY) != 0) {
            perms &= ~PERM_WRITE;
        }
        if ((entry & AP_TABLE_NO_EL0) != 0) {
            perms &= ~PERM_USER;
        }
        if ((entry & (PXN_TABLE | XN_TABLE)) != 0) {
            perms &= ~PERM_EXEC;
        }
        return perms;
    }

    @Override
    public int leafPerms(long entry, int level) {
        if (stage == Stage.S1) {
            return PERM_READ
                    | ((entry & AP_RDONLY) == 0 ? PERM_WRITE : 0)
                    | ((entry & (PXN | XN)) == 0 ? PERM_EXEC : 0)
                    | ((entry & AP_UNPRIV) != 0 ? PERM_USER : 0);
        }
        return ((entry & S2AP_READ) != 0 ? PERM_READ : 0)
                | ((entry & S2AP_WRITE) != 0 ? PERM_WRITE : 0)
                | ((entry & XN) == 0 ? PERM_EXEC : 0)
                | PERM_USER;
    }

    /** {@return a leaf with AF set; table descriptors have no access flag} */
    @Override
    public long accessedEntry(long entry, int level) {
        return kind(entry, level) == LEAF ? entry | AF : entry;
    }

    @Override
    public boolean accessFlagFault(long entry) {
        return (entry & AF) == 0;
    }

    /** {@return whether the leaf is writable-clean: DBM set and currently read-only} */
    @Override
    public boolean writableWhenDirtied(long entry) {
        if ((entry & DBM) == 0) {
            return false;
        }
        return stage == Stage.S1 ? (entry & AP_RDONLY) != 0 : (entry & S2AP_WRITE) == 0;
    }

    @Override
    public boolean reservedBitsSet(long entry, int level) {
        boolean table = kind(entry, level) == TABLE;
        if ((entry & (table ? RES0_49_48 | RES0_TABLE_50 : RES0_49_48)) != 0) {
            return true;
        }
        long address = entry & ADDR_MASK;
        int alignShift = table ? granule.shift : itemShift(level);
        return (address & ((1L << alignShift) - 1)) != 0 || address >= outputLimit;
    }
}
