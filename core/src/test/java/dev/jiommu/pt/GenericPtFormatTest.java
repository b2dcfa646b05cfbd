package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.FormatConfigs.FormatConfig;
import dev.jiommu.pt.format.AmdV1;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;

import static dev.jiommu.pt.PageTableAssertions.assertErrno;
import static dev.jiommu.pt.PageTableAssertions.assertNotMapped;
import static dev.jiommu.pt.PageTableAssertions.assertTranslates;
import static dev.jiommu.pt.PageTableAssertions.assertWalkerAgrees;
import static dev.jiommu.pt.PageTableAssertions.clearLow;
import static dev.jiommu.pt.PageTableAssertions.lowBits;
import static dev.jiommu.pt.PageTableAssertions.pathTables;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Port of the format-level generic_pt KUnit cases ({@code torvalds/linux:
 * drivers/iommu/generic_pt/kunit_generic_pt.h}) over every {@link FormatConfigs} configuration.
 *
 * <p>Like the kernel's check_all_levels, the per-level cases first map the last smallest page of
 * the input range (the lower half for sign-extended formats), which builds one table at every
 * level, then work on slot 0 of each of those tables: that slot is never the one on the path, and
 * writing it by hand is what the kernel's pt_install_* calls do. Every entry written is read back
 * through the format's decoders <em>and</em> through the hardware walker and the software lookup.
 *
 * <p>Left out: test_init and test_bitops (C helper arithmetic with no Java counterpart).
 */
@ParameterizedClass(name = "{0}")
@MethodSource("dev.jiommu.pt.FormatConfigs#all")
class GenericPtFormatTest {
    private static final long TEST_OA_SEED = 0x74a7_1445_dead_beefL;
    /** Every Prot flag the formats may encode; the attribute round trip tries every combination. */
    private static final int ALL_PROT = Prot.READ | Prot.WRITE | Prot.CACHE | Prot.NOEXEC | Prot.MMIO | Prot.PRIV;

    @Parameter
    FormatConfig config;

    private PageTableFixture fixture;
    private PageTableFormat format;
    private PhysicalMemory memory;
    private PageTable table;
    private long testOa;
    private long maxOa;

    @BeforeEach
    void setUp() {
        format = config.format();
        fixture = new PageTableFixture(format);
        memory = fixture.memory;
        table = fixture.table;
        testOa = lowBits(TEST_OA_SEED, format.outputBits());
        maxOa = lowBits(-1L, format.outputBits());
    }

    @AfterEach
    void tearDown() {
        fixture.close();
    }

    // ---- best page size --------------------------------------------------------------------------

    /**
     * {@link PageTable#bestPageShift} against a brute-force oracle, for random subsets of the
     * format's page sizes: random prefixes with every combination of alignment suffixes, the zero
     * and all-ones prefixes, and suffixes past 32 bits (the kernel's sweeps, within the
     * precondition that iova and pa are aligned to the smallest size and the length holds one).
     */
    @Test
    void test_best_pgsize() {
        SplittableRandom random = new SplittableRandom(0xb357_9a6eL ^ format.name().hashCode());
        for (int subset = 0; subset < 12; subset++) {
            long sizes = subset == 0 ? format.pageSizes() : randomSubset(random, format.pageSizes());
            PageTable restricted = new PageTable(format, memory, sizes);
            try {
                int min = Long.numberOfTrailingZeros(sizes);
                for (int a = min; a < min + 9; a++) {
                    for (int b = min; b < min + 9; b++) {
                        for (int c = min; c < min + 9; c++) {
                            checkBest(restricted, random.nextLong() << a, random.nextLong() << b, randomLength(random, c, min));
                            checkBest(restricted, -1L << a, -1L << b, randomLength(random, c, min));
                        }
                    }
                }
                for (int c = min; c < 64; c++) {
                    checkBest(restricted, 0, 0, randomLength(random, c, min));
                    checkBest(restricted, 0, 0, 1L << c);
                }
                for (int a = 32; a < 42; a++) {
                    for (int b = 32; b < 42; b++) {
                        for (int c = 32; c < 42; c++) {
                            checkBest(restricted, random.nextLong() << a, random.nextLong() << b, randomLength(random, c, min));
                        }
                    }
                }
                // No size fits an iova below the smallest alignment: a caller bug, refused, never guessed.
                if (min > 0) {
                    assertThatThrownBy(() -> restricted.bestPageShift(1L << (min - 1), 0, 1L << min))
                            .isInstanceOf(AssertionError.class);
                }
            } finally {
                restricted.destroy();
            }
        }
        // The kernel's "pgsize_bitmap is always 0" case: a table with no page size cannot exist.
        assertThatThrownBy(() -> new PageTable(format, memory, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new PageTable(format, memory, format.pageSizes() | 1L))
                .isInstanceOf(IllegalArgumentException.class);
    }

    private void checkBest(PageTable restricted, long iova, long pa, long lengthBytes) {
        assertThat(restricted.bestPageShift(iova, pa, lengthBytes))
                .as("%s sizes=0x%x iova=0x%x pa=0x%x length=0x%x", format, restricted.pageSizes(), iova, pa, lengthBytes)
                .isEqualTo(PageTableAssertions.referenceBestPageShift(restricted.pageSizes(), iova, pa, lengthBytes));
    }

    private static long randomSubset(SplittableRandom random, long sizes) {
        long subset;
        do {
            subset = sizes & random.nextLong();
        } while (subset == 0);
        return subset;
    }

    /** {@return a length in [2^c, 2^(c+1)) (unsigned), a multiple of 2^min} */
    private static long randomLength(SplittableRandom random, int c, int min) {
        long suffix = c == 0 ? 0 : random.nextLong() & ((1L << c) - 1);
        return clearLow((1L << c) | suffix, min);
    }

    // ---- per-level cases -------------------------------------------------------------------------

    /** A table entry at every level that can hold one reads back its address and next level. */
    @Test
    void test_table_ptr() {
        long[] path = buildAllLevels();
        for (int level = format.topLevel(); level > 0; level--) {
            long slot = path[level];
            long slotIova = slotZeroIova(level);
            assertThat(kindAt(slot, level)).as("%s level %d slot 0 before", format, level).isEqualTo(PageTableFormat.EMPTY);

            // A table is aligned to its own size (a 16K or 64K granule's tables are bigger than a frame).
            int tableShift = Math.max(12, Long.numberOfTrailingZeros(format.tableBytes(level - 1)));
            for (long target : new long[] {clearLow(testOa, tableShift), 0, clearLow(maxOa, tableShift)}) {
                long entry = format.tableEntry(target, level);
                assertThat(format.kind(entry, level)).as("%s level %d table entry 0x%x kind", format, level, entry)
                        .isEqualTo(PageTableFormat.TABLE);
                assertThat(format.tableAddress(entry)).as("%s level %d table entry 0x%x address", format, level, entry)
                        .isEqualTo(target);
                assertThat(format.childLevel(entry, level)).isEqualTo(level - 1);
                assertThat(format.reservedBitsSet(entry, level)).as("%s level %d: own table entry reserved", format, level).isFalse();
                // Installing twice writes the same value.
                assertThat(format.tableEntry(target, level)).isEqualTo(entry);
            }

            // Through memory: the walker follows the pointer into a real, empty table and stops there.
            long childBytes = Math.max(PhysicalMemory.FRAME_BYTES, format.tableBytes(level - 1));
            long child = memory.allocate(childBytes, childBytes);
            memory.write64(slot, format.tableEntry(child, level));
            assertThat(kindAt(slot, level)).isEqualTo(PageTableFormat.TABLE);
            WalkResult result = new WalkResult();
            fixture.walker.walk(format, table.rootAddress(), slotIova, Access.READ, 0, result);
            assertThat(result.status()).as("%s level %d: %s", format, level, result).isEqualTo(WalkStatus.NOT_PRESENT);
            assertThat(result.level()).isEqualTo(level - 1);
            assertThat(result.entryAddress()).as("%s level %d: the walker read from the installed table", format, level)
                    .isEqualTo(child + ((long) format.index(slotIova, level - 1) << 3));
            assertNotMapped(table, fixture.walker, slotIova);

            memory.write64(slot, 0);
            assertThat(kindAt(slot, level)).isEqualTo(PageTableFormat.EMPTY);
            memory.free(child, childBytes);
        }
    }

    /** The input size is the manual's, and exactly the addresses below it (or their sign extension) translate. */
    @Test
    void test_max_va() {
        int bits = format.inputBits();
        assertThat(bits).as("%s input bits", format).isEqualTo(config.specInputBits());
        int granule = Long.numberOfTrailingZeros(format.pageSizes());
        long lastPage;
        if (format.signExtended()) {
            long top = 1L << (bits - 1);
            assertThat(format.inputValid(top - 1)).isTrue();
            assertThat(format.inputValid(-top)).isTrue();
            assertThat(format.inputValid(top)).isFalse();
            assertThat(format.inputValid(-top - 1)).isFalse();
            lastPage = top - (1L << granule);
        } else {
            lastPage = lowBits(-1L, bits) - (1L << granule) + 1;
            if (bits < 64) {
                assertThat(format.inputValid((1L << bits) - 1)).isTrue();
                assertThat(format.inputValid(1L << bits)).isFalse();
                assertErrno(Errno.ERANGE, () -> table.map(1L << bits, 0, 1L << granule, Prot.READ));
            }
        }
        table.map(lastPage, testOa & -(1L << granule), 1L << granule, Prot.READ);
        assertTranslates(table, fixture.walker, lastPage, testOa & -(1L << granule));
        assertThat(table.unmap(lastPage, 1L << granule)).isEqualTo(1L << granule);
    }

    /**
     * Levels decode contiguous, non-overlapping index fields covering exactly the input bits, and
     * the highest address uses the last index of every table (half the top table when sign-extended).
     */
    @Test
    void test_table_radix() {
        long topPage = topPageIova();
        buildAllLevels();
        assertThat(format.itemShift(0)).as("%s: level 0 decodes the bits above the granule", format)
                .isEqualTo(Long.numberOfTrailingZeros(format.pageSizes()));
        for (int level = 0; level < format.levels(); level++) {
            assertThat(format.indexBits(level)).as("%s level %d index bits", format, level).isGreaterThan(1);
            if (level > 0) {
                assertThat(format.itemShift(level)).as("%s level %d starts where level %d ends", format, level, level - 1)
                        .isEqualTo(format.itemShift(level - 1) + format.indexBits(level - 1));
            }
            int lastIndex = (1 << format.indexBits(level)) - 1;
            if (format.signExtended() && level == format.topLevel()) {
                lastIndex = (1 << (format.indexBits(level) - 1)) - 1;
            }
            assertThat(format.index(topPage, level)).as("%s level %d index of the highest address", format, level)
                    .isEqualTo(lastIndex);
        }
        assertThat(format.itemShift(format.topLevel()) + format.indexBits(format.topLevel())).isEqualTo(format.inputBits());

        SplittableRandom random = new SplittableRandom(format.name().hashCode());
        for (int i = 0; i < 1000; i++) {
            long iova = random.nextLong();
            long rebuilt = lowBits(iova, format.itemShift(0));
            for (int level = 0; level < format.levels(); level++) {
                rebuilt |= (long) format.index(iova, level) << format.itemShift(level);
            }
            assertThat(rebuilt).as("%s: iova 0x%x rebuilt from its indexes", format, iova)
                    .isEqualTo(lowBits(iova, format.inputBits()));
        }
    }

    /** Each level's leaf sizes lie within that level's table, and include its natural size where the format allows. */
    @Test
    void test_entry_possible_sizes() {
        long union = 0;
        for (int level = 0; level < format.levels(); level++) {
            long sizes = format.leafSizes(level);
            union |= sizes;
            if (sizes == 0) {
                continue;
            }
            int itemShift = format.itemShift(level);
            int tableShift = itemShift + format.indexBits(level);
            assertThat(lowBits(sizes, itemShift)).as("%s level %d: sizes below one item", format, level).isZero();
            assertThat(tableShift >= 64 ? 0 : sizes >>> tableShift).as("%s level %d: sizes beyond the table", format, level).isZero();
            if (format instanceof AmdV1 && sizes == 0xff00_0000_0000L) {
                assertThat(sizes).isNotZero(); // AMD's 512 GiB erratum: the natural size is missing at this level
            } else {
                assertThat(sizes & (1L << itemShift)).as("%s level %d: natural size 2^%d", format, level, itemShift).isNotZero();
            }
            for (long s = sizes; s != 0; s &= s - 1) {
                assertThat(format.levelOfPageShift(Long.numberOfTrailingZeros(s))).isEqualTo(level);
            }
        }
        assertThat(union).as("%s: page sizes are the union of the levels' leaf sizes", format).isEqualTo(format.pageSizes());
        if (format instanceof AmdV1) {
            assertThat(format.leafSizes(format.topLevel())).as("%s: AMD's top level holds no leaf", format).isZero();
        }
    }

    /**
     * A leaf of every size at every level, at output addresses test_oa, 0 and the maximum, reads
     * back its address and size from every slot it occupies (AMD's size-encoded leaves are
     * replicated), and the walker and lookup translate every slot to the right address.
     */
    @Test
    void test_entry_oa() {
        long[] path = buildAllLevels();
        for (int level = 0; level < format.levels(); level++) {
            if (format.leafSizes(level) == 0) {
                continue;
            }
            for (long oaSeed : new long[] {testOa, 0, maxOa}) {
                for (long s = format.leafSizes(level); s != 0; s &= s - 1) {
                    int shift = Long.numberOfTrailingZeros(s);
                    long oa = clearLow(oaSeed, shift);
                    long entry = format.leafEntry(oa, shift, level, Prot.READ);
                    int slots = installLeaf(path[level], level, shift, entry);
                    for (int k = 0; k < slots; k++) {
                        long slotEntry = memory.read64(path[level] + 8L * k);
                        assertThat(format.kind(slotEntry, level)).as("%s level %d 2^%d slot %d", format, level, shift, k)
                                .isEqualTo(PageTableFormat.LEAF);
                        assertThat(format.leafAddress(slotEntry, level)).as("%s level %d 2^%d slot %d oa", format, level, shift, k)
                                .isEqualTo(oa);
                        assertThat(format.leafShift(slotEntry, level)).as("%s level %d 2^%d slot %d size", format, level, shift, k)
                                .isEqualTo(shift);
                        assertThat(format.reservedBitsSet(slotEntry, level)).isFalse();
                        long itemOffset = (long) k << format.itemShift(level);
                        long probe = Math.min(42, (1L << format.itemShift(level)) - 1);
                        assertTranslates(table, fixture.walker, slotZeroIova(level) + itemOffset + probe, oa + itemOffset + probe);
                    }
                    clearSlots(path[level], slots);
                    assertThat(kindAt(path[level], level)).isEqualTo(PageTableFormat.EMPTY);
                    assertNotMapped(table, fixture.walker, slotZeroIova(level));
                }
            }
        }
    }

    /**
     * Decoding a leaf's attributes and encoding them again gives the identical entry, for every
     * combination of Prot flags that grants read or write, at every size; the decoded flags grant
     * at least what was asked, and the walker grants exactly what they say.
     */
    @Test
    void test_attr_from_entry() {
        long[] path = buildAllLevels();
        for (int level = 0; level < format.levels(); level++) {
            for (long s = format.leafSizes(level); s != 0; s &= s - 1) {
                int shift = Long.numberOfTrailingZeros(s);
                long oa = clearLow(testOa, shift);
                for (int prot = 0; prot <= ALL_PROT; prot++) {
                    if ((prot & ~ALL_PROT) != 0 || (prot & Prot.READ_WRITE) == 0) {
                        continue; // map refuses a prot without read or write
                    }
                    long good = format.leafEntry(oa, shift, level, prot);
                    int decoded = format.leafProt(good, level);
                    String what = String.format("%s level %d 2^%d prot %s entry 0x%x decoded %s", format, level, shift,
                            Prot.describe(prot), good, Prot.describe(decoded));
                    assertThat(format.kind(good, level)).as(what).isEqualTo(PageTableFormat.LEAF);
                    assertThat(decoded & prot & Prot.READ_WRITE).as(what).isEqualTo(prot & Prot.READ_WRITE);
                    assertThat(format.leafEntry(oa, shift, level, decoded)).as(what).isEqualTo(good);

                    int slots = installLeaf(path[level], level, shift, good);
                    long iova = slotZeroIova(level);
                    int priv = Access.PRIV; // privileged requests: this checks R/W, not the user bit
                    assertThat(walk(iova, Access.READ | priv)).as(what).isEqualTo(
                            (decoded & Prot.READ) != 0 ? WalkStatus.OK : WalkStatus.PERMISSION);
                    assertThat(walk(iova, Access.WRITE | priv)).as(what).isEqualTo(
                            (decoded & Prot.WRITE) != 0 ? WalkStatus.OK : WalkStatus.PERMISSION);
                    clearSlots(path[level], slots);
                }
            }
        }
    }

    /** dirtyEntry/cleanEntry work on every slot of a leaf, and a dirty replica makes the whole page dirty. */
    @Test
    void test_dirty() {
        long[] path = buildAllLevels();
        for (int level = 0; level < format.levels(); level++) {
            for (long s = format.leafSizes(level); s != 0; s &= s - 1) {
                int shift = Long.numberOfTrailingZeros(s);
                long oa = clearLow(testOa, shift);
                long entry = format.leafEntry(oa, shift, level, Prot.READ_WRITE);
                long clean = format.cleanEntry(entry);
                long dirty = format.dirtyEntry(clean);
                String what = String.format("%s level %d 2^%d entry 0x%x", format, level, shift, entry);
                assertThat(format.dirty(clean)).as(what).isFalse();
                assertThat(format.dirty(dirty)).as(what).isTrue();
                assertThat(format.cleanEntry(dirty)).as(what).isEqualTo(clean);
                for (long e : new long[] {clean, dirty}) {
                    assertThat(format.kind(e, level)).as(what).isEqualTo(PageTableFormat.LEAF);
                    assertThat(format.leafAddress(e, level)).as(what).isEqualTo(oa);
                    assertThat(format.leafShift(e, level)).as(what).isEqualTo(shift);
                    assertThat(format.leafProt(e, level)).as(what).isEqualTo(format.leafProt(entry, level));
                }

                int slots = installLeaf(path[level], level, shift, clean);
                long iova = slotZeroIova(level);
                assertThat(dirtyPages(iova, shift, true)).as(what + " freshly cleaned").isZero();
                for (int k = 0; k < slots; k++) {
                    long slot = path[level] + 8L * k;
                    memory.write64(slot, format.dirtyEntry(memory.read64(slot)));
                    assertThat(dirtyPages(iova, shift, true)).as("%s: slot %d dirty, NO_CLEAR", what, k).isEqualTo(1);
                    assertThat(format.dirty(memory.read64(slot))).as("%s: NO_CLEAR kept slot %d dirty", what, k).isTrue();
                    assertThat(dirtyPages(iova, shift, false)).as("%s: slot %d dirty, clear", what, k).isEqualTo(1);
                    for (int j = 0; j < slots; j++) {
                        assertThat(format.dirty(memory.read64(path[level] + 8L * j))).as("%s: slot %d after clear", what, j).isFalse();
                    }
                    assertThat(dirtyPages(iova, shift, true)).as("%s: after clearing slot %d", what, k).isZero();
                }
                clearSlots(path[level], slots);
            }
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /** {@return the last smallest page of the input range (lower half when sign-extended)} */
    private long topPageIova() {
        int granule = Long.numberOfTrailingZeros(format.pageSizes());
        long top = format.signExtended() ? (1L << (format.inputBits() - 1)) - 1 : lowBits(-1L, format.inputBits());
        return clearLow(top, granule);
    }

    /**
     * Maps the top page so every level has a table (the kernel's check_all_levels), and checks that
     * the path uses each table's last slot so slot 0 is free for the test.
     *
     * @return per level, the address of slot 0 of the table on the path
     */
    private long[] buildAllLevels() {
        long top = topPageIova();
        int granule = Long.numberOfTrailingZeros(format.pageSizes());
        table.map(top, 0, 1L << granule, Prot.READ);
        long[] path = pathTables(table, memory, top);
        for (int level = 0; level < format.levels(); level++) {
            assertThat(path[level]).as("%s: table at level %d", format, level).isNotZero();
            assertThat(format.index(top, level)).as("%s: path index at level %d", format, level).isNotZero();
        }
        return path;
    }

    /** {@return the IOVA that slot 0 of the level's table on the top page's path translates} */
    private long slotZeroIova(int level) {
        return clearLow(topPageIova(), format.itemShift(level) + format.indexBits(level));
    }

    private int kindAt(long slot, int level) {
        return format.kind(memory.read64(slot), level);
    }

    /** Writes {@code entry} into every slot a leaf of 2^shift occupies from slot 0; {@return the slot count} */
    private int installLeaf(long tableAddress, int level, int shift, long entry) {
        int slots = 1 << (shift - format.itemShift(level));
        for (int k = 0; k < slots; k++) {
            assertThat(kindAt(tableAddress + 8L * k, level)).isEqualTo(PageTableFormat.EMPTY);
            memory.write64(tableAddress + 8L * k, entry);
        }
        return slots;
    }

    private void clearSlots(long tableAddress, int slots) {
        for (int k = 0; k < slots; k++) {
            memory.write64(tableAddress + 8L * k, 0);
        }
    }

    private WalkStatus walk(long iova, int access) {
        WalkResult result = new WalkResult();
        WalkStatus status = fixture.walker.walk(format, table.rootAddress(), iova, access, 0, result);
        if (status == WalkStatus.OK) {
            assertWalkerAgrees(table, fixture.walker, iova, access);
        }
        return status;
    }

    /** {@return how many 2^shift pages from iova (the page and the one after it) read dirty} */
    private long dirtyPages(long iova, int shift, boolean noClear) {
        DirtyBitmap bitmap = new DirtyBitmap(iova, shift, 2);
        table.readAndClearDirty(iova, 1L << shift, bitmap, noClear);
        assertThat(bitmap.isSet(1)).as("%s: the page after 0x%x marked", format, iova).isFalse();
        return bitmap.cardinality();
    }
}
