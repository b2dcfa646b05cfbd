package dev.jiommu.pt;

import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.FormatConfigs.FormatConfig;
import dev.jiommu.pt.format.AmdV1;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static dev.jiommu.pt.PageTableAssertions.assertNotMapped;
import static dev.jiommu.pt.PageTableAssertions.assertTranslates;
import static dev.jiommu.pt.PageTableAssertions.assertWalkerAgrees;
import static dev.jiommu.pt.PageTableAssertions.clearLow;
import static dev.jiommu.pt.PageTableAssertions.lowBits;
import static dev.jiommu.pt.PageTableAssertions.pathTables;
import static dev.jiommu.pt.PageTableAssertions.slotAddress;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The hardware walker: accessed/dirty updates, and every fault with its {@link WalkStatus} and level.
 *
 * <p>Tables built by {@link PageTable} are checked under the usual rule (walker and software lookup
 * agree). Faults on <em>hand-written</em> entries the software side never writes (reserved bits,
 * level pointers that skip or climb, pointers into missing memory) are checked on the walker alone:
 * {@link PageTable#iovaToPhys} trusts the tables it built, as the kernel's iova_to_phys does, so it
 * has no opinion on a hostile encoding worth asserting.
 */
class PageTableWalkerTest {
    private static final int BOTH = PageTableWalker.UPDATE_ACCESSED | PageTableWalker.UPDATE_DIRTY;

    // ---- accessed and dirty ----------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#vtdSecondStage")
    void vtdSecondStageSetsAccessedAtEveryLevelAndDirtyOnlyOnWrite(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            long iova = spreadIova(f.format());
            f.table.map(iova, 0x4000_0000L, 4096, Prot.READ_WRITE);
            long[] slots = pathSlots(f, iova);
            for (long slot : slots) {
                assertThat(f.memory.read64(slot) & (VtdSecondStage.A | VtdSecondStage.D)).as("fresh entry at 0x%x", slot).isZero();
            }

            long[] before = read(f, slots);
            assertThat(walk(f, iova, Access.READ, 0)).isEqualTo(WalkStatus.OK);
            assertThat(walk(f, iova, Access.WRITE, 0)).isEqualTo(WalkStatus.OK);
            assertThat(read(f, slots)).as("SSADE off: no entry changes").isEqualTo(before);

            assertThat(walk(f, iova, Access.READ, BOTH)).isEqualTo(WalkStatus.OK);
            for (int level = 0; level < slots.length; level++) {
                long entry = f.memory.read64(slots[level]);
                assertThat(entry & VtdSecondStage.A).as("%s: A at level %d after a read", config, level).isNotZero();
                assertThat(entry & VtdSecondStage.D).as("%s: D at level %d after a read", config, level).isZero();
            }
            assertThat(walk(f, iova, Access.WRITE, PageTableWalker.UPDATE_ACCESSED)).isEqualTo(WalkStatus.OK);
            assertThat(f.memory.read64(slots[0]) & VtdSecondStage.D).as("%s: D without dirty updates enabled", config).isZero();

            assertThat(walk(f, iova, Access.WRITE, BOTH)).isEqualTo(WalkStatus.OK);
            assertThat(f.memory.read64(slots[0]) & VtdSecondStage.D).as("%s: D on the leaf after a write", config).isNotZero();
            for (int level = 1; level < slots.length; level++) {
                assertThat(f.memory.read64(slots[level]) & VtdSecondStage.D).as("%s: D on table level %d", config, level).isZero();
            }
            assertTranslates(f.table, f.walker, iova, 0x4000_0000L);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#x86")
    void x86SetsAccessedAtEveryLevelAndDirtyOnTheLeafForWrites(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            long iova = spreadIova(f.format());
            f.table.map(iova, 0x4000_0000L, 4096, Prot.READ_WRITE);
            long[] slots = pathSlots(f, iova);
            for (long slot : slots) {
                f.memory.write64(slot, f.memory.read64(slot) & ~(X86_64.A | X86_64.D)); // as if software cleared them
            }

            assertThat(walk(f, iova, Access.READ, BOTH)).isEqualTo(WalkStatus.OK);
            for (int level = 0; level < slots.length; level++) {
                long entry = f.memory.read64(slots[level]);
                assertThat(entry & X86_64.A).as("%s: A at level %d", config, level).isNotZero();
                assertThat(entry & X86_64.D).as("%s: D at level %d after a read", config, level).isZero();
            }
            assertThat(walk(f, iova, Access.WRITE, BOTH)).isEqualTo(WalkStatus.OK);
            assertThat(f.memory.read64(slots[0]) & X86_64.D).as("%s: D on the leaf after a write", config).isNotZero();
            for (int level = 1; level < slots.length; level++) {
                assertThat(f.memory.read64(slots[level]) & X86_64.D).as("%s: D on table level %d", config, level).isZero();
            }

            // A write the leaf refuses dirties nothing.
            long readOnly = iova + 4096;
            f.table.map(readOnly, 0x4000_1000L, 4096, Prot.READ);
            long leaf = slotAddress(f.table, f.memory, readOnly, 0);
            f.memory.write64(leaf, f.memory.read64(leaf) & ~(X86_64.A | X86_64.D));
            assertThat(walk(f, readOnly, Access.WRITE, BOTH)).isEqualTo(WalkStatus.PERMISSION);
            assertThat(f.memory.read64(leaf) & X86_64.D).isZero();
            assertTranslates(f.table, f.walker, readOnly, 0x4000_1000L);
        }
    }

    // ---- faults ----------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#all")
    void notPresentFaultsAtTheLevelWhereTheWalkStopped(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            long iova = spreadIova(format);
            WalkResult result = new WalkResult();
            assertThat(f.walker.walk(format, f.table.rootAddress(), iova, Access.READ, 0, result)).isEqualTo(WalkStatus.NOT_PRESENT);
            assertThat(result.level()).as("empty table").isEqualTo(format.topLevel());

            long granule = Long.lowestOneBit(format.pageSizes());
            f.table.map(iova, 0x8000_0000L, granule, Prot.READ_WRITE);
            long[] path = pathTables(f.table, f.memory, iova);
            for (int level = 0; level < format.levels(); level++) {
                long neighbour = iova ^ (1L << format.itemShift(level));
                assertThat(f.walker.walk(format, f.table.rootAddress(), neighbour, Access.READ, 0, result))
                        .as("%s: iova 0x%x differs at level %d: %s", config, neighbour, level, result)
                        .isEqualTo(WalkStatus.NOT_PRESENT);
                assertThat(result.level()).as("%s: fault level for 0x%x", config, neighbour).isEqualTo(level);
                assertThat(result.hardwareLevel()).isEqualTo(format.hardwareLevel(level));
                assertThat(result.entryAddress()).isEqualTo(path[level] + ((long) format.index(neighbour, level) << 3));
                assertThat(result.tableReads()).isEqualTo(format.levels() - level);
                assertNotMapped(f.table, f.walker, neighbour);
            }
            assertTranslates(f.table, f.walker, iova, 0x8000_0000L);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#all")
    void writeToAReadOnlyPageIsAPermissionFault(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            long iova = spreadIova(f.format());
            long granule = Long.lowestOneBit(f.format().pageSizes());
            f.table.map(iova, 0x8000_0000L, granule, Prot.READ);
            WalkResult result = new WalkResult();
            assertThat(f.walker.walk(f.format(), f.table.rootAddress(), iova, Access.WRITE, BOTH, result)).isEqualTo(WalkStatus.PERMISSION);
            assertThat(result.level()).isZero();
            assertThat(f.format().dirty(f.memory.read64(slotAddress(f.table, f.memory, iova, 0)))).isFalse();
            assertTranslates(f.table, f.walker, iova, 0x8000_0000L);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#x86")
    void unprivilegedRequestToAPrivilegedPageIsAPermissionFault(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            long iova = spreadIova(f.format());
            f.table.map(iova, 0x8000_0000L, 4096, Prot.READ_WRITE | Prot.PRIV);
            assertThat(walk(f, iova, Access.READ, 0)).isEqualTo(WalkStatus.PERMISSION);
            assertThat(walk(f, iova, Access.WRITE, 0)).isEqualTo(WalkStatus.PERMISSION);
            assertThat(walk(f, iova, Access.WRITE | Access.PRIV, 0)).isEqualTo(WalkStatus.OK);
            assertThat(assertWalkerAgrees(f.table, f.walker, iova, Access.READ | Access.PRIV)).isEqualTo(0x8000_0000L);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#x86")
    void executeOfANoExecPageIsAPermissionFault(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            long iova = spreadIova(f.format());
            f.table.map(iova, 0x8000_0000L, 4096, Prot.READ | Prot.NOEXEC);
            f.table.map(iova + 4096, 0x8000_1000L, 4096, Prot.READ);
            assertThat(walk(f, iova, Access.EXEC, 0)).isEqualTo(WalkStatus.PERMISSION);
            assertThat(walk(f, iova, Access.READ, 0)).isEqualTo(WalkStatus.OK);
            assertThat(walk(f, iova + 4096, Access.EXEC, 0)).isEqualTo(WalkStatus.OK);
            assertTranslates(f.table, f.walker, iova, 0x8000_0000L);
        }
    }

    /** A hand-written PS bit in a top-level entry (VT-d 4/5-level, x86): the top holds no page. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("topLevelWithoutLeaves")
    void pageSizeBitAtTheTopLevelIsReserved(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            long iova = spreadIova(format);
            long child = f.memory.allocateFrame();
            long ps = format instanceof X86_64 ? X86_64.PS : VtdSecondStage.PS;
            long slot = f.table.rootAddress() + ((long) format.index(iova, format.topLevel()) << 3);
            f.memory.write64(slot, format.tableEntry(child, format.topLevel()) | ps);
            WalkResult result = new WalkResult();
            assertThat(f.walker.walk(format, f.table.rootAddress(), iova, Access.READ, 0, result)).isEqualTo(WalkStatus.RESERVED_BITS);
            assertThat(result.level()).isEqualTo(format.topLevel());
            f.memory.write64(slot, 0);
            f.memory.free(child, PhysicalMemory.FRAME_BYTES);
        }
    }

    static Stream<FormatConfig> topLevelWithoutLeaves() {
        return FormatConfigs.where(f -> (f instanceof X86_64 || f instanceof VtdSecondStage) && f.leafSizes(f.topLevel()) == 0);
    }

    /** A 2 MiB or 1 GiB leaf whose address is not aligned to its size (x86's bit 12 is PAT, not address). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("vtdAndX86")
    void misalignedLargeLeafAddressIsReserved(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            for (int level = 1; level <= 2 && level < format.levels(); level++) {
                int shift = format.itemShift(level);
                long iova = 5L << shift;
                long pa = 3L << shift;
                f.table.map(iova, pa, 1L << shift, Prot.READ_WRITE);
                long slot = slotAddress(f.table, f.memory, iova, level);
                long good = f.memory.read64(slot);
                long lowestAddressBit = format instanceof X86_64 ? 1L << 13 : 1L << 12;
                for (long bit = lowestAddressBit; bit < 1L << shift; bit <<= 1) {
                    f.memory.write64(slot, good | bit);
                    WalkResult result = new WalkResult();
                    assertThat(f.walker.walk(format, f.table.rootAddress(), iova, Access.READ, 0, result))
                            .as("%s level %d address bit 0x%x", config, level, bit).isEqualTo(WalkStatus.RESERVED_BITS);
                    assertThat(result.level()).isEqualTo(level);
                }
                if (format instanceof X86_64) {
                    f.memory.write64(slot, good | (1L << 12)); // PAT
                    assertTranslates(f.table, f.walker, iova + 0x123_000L, pa + 0x123_000L);
                }
                f.memory.write64(slot, good);
                assertTranslates(f.table, f.walker, iova + 0x42, pa + 0x42);
                assertThat(f.table.unmap(iova, 1L << shift)).isEqualTo(1L << shift);
            }
        }
    }

    static Stream<FormatConfig> vtdAndX86() {
        return FormatConfigs.where(f -> f instanceof X86_64 || f instanceof VtdSecondStage);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#signExtended")
    void nonCanonicalAddressFaults(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            long half = 1L << (format.inputBits() - 1);
            f.table.map(-half, 0x8000_0000L, 4096, Prot.READ_WRITE);
            f.table.map(half - 4096, 0x9000_0000L, 4096, Prot.READ_WRITE);
            assertTranslates(f.table, f.walker, -half + 8, 0x8000_0008L);
            assertTranslates(f.table, f.walker, half - 8, 0x9000_0ff8L);
            for (long iova : new long[] {half, -half - 4096, Long.MIN_VALUE, half | 8, (-half + 8) & ~Long.MIN_VALUE}) {
                WalkResult result = new WalkResult();
                assertThat(f.walker.walk(format, f.table.rootAddress(), iova, Access.READ, 0, result))
                        .as("%s iova 0x%x", config, iova).isEqualTo(WalkStatus.NON_CANONICAL);
                assertThat(result.level()).isEqualTo(format.topLevel());
                assertThat(result.tableReads()).isZero();
                assertNotMapped(f.table, f.walker, iova);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#unextendedBelow64Bits")
    void addressBeyondTheInputBitsFaults(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            long granule = Long.lowestOneBit(format.pageSizes());
            long iova = spreadIova(format);
            f.table.map(iova, 0x8000_0000L, granule, Prot.READ_WRITE);
            // Same low bits as a mapped page: must not alias it.
            for (long beyond : new long[] {iova | (1L << format.inputBits()), 1L << format.inputBits(), -1L, iova | Long.MIN_VALUE}) {
                WalkResult result = new WalkResult();
                assertThat(f.walker.walk(format, f.table.rootAddress(), beyond, Access.READ, 0, result))
                        .as("%s iova 0x%x", config, beyond).isEqualTo(WalkStatus.ADDRESS_SIZE);
                assertThat(result.level()).isEqualTo(format.topLevel());
                assertNotMapped(f.table, f.walker, beyond);
            }
            assertTranslates(f.table, f.walker, iova, 0x8000_0000L);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#all")
    void tablePointerToMissingMemoryIsAFetchAbort(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            long iova = spreadIova(format);
            f.table.map(iova, 0x8000_0000L, Long.lowestOneBit(format.pageSizes()), Prot.READ_WRITE);
            // Freed memory aligned for any granule's tables, so the entry can hold the address as is.
            long freed = f.memory.allocate(64 << 10, 64 << 10);
            f.memory.free(freed, 64 << 10);
            long[] missing = {freed, f.memory.endAddress(), clearLow(f.memory.baseAddress() - 1, 16)};
            long[] path = pathTables(f.table, f.memory, iova);
            WalkResult result = new WalkResult();
            for (long bad : missing) {
                assertThat(f.walker.walk(format, bad, iova, Access.READ, 0, result)).as("root 0x%x", bad).isEqualTo(WalkStatus.TABLE_FETCH_ABORT);
                assertThat(result.level()).isEqualTo(format.topLevel());
                for (int level = format.topLevel(); level > 0; level--) {
                    long other = iova ^ (1L << format.itemShift(level));
                    long slot = path[level] + ((long) format.index(other, level) << 3);
                    f.memory.write64(slot, format.tableEntry(bad, level));
                    assertThat(f.walker.walk(format, f.table.rootAddress(), other, Access.READ, BOTH, result))
                            .as("%s: level %d entry pointing at 0x%x: %s", config, level, bad, result)
                            .isEqualTo(WalkStatus.TABLE_FETCH_ABORT);
                    assertThat(result.level()).isEqualTo(level - 1);
                    assertThat(result.entryAddress()).isEqualTo(bad + ((long) format.index(other, level - 1) << 3));
                    f.memory.write64(slot, 0);
                }
            }
            assertTranslates(f.table, f.walker, iova, 0x8000_0000L);
        }
    }

    // ---- AMD v1 --------------------------------------------------------------------------------

    /**
     * A top entry pointing straight at a level-0 table skips every level between: it translates
     * when the skipped index bits are zero and faults with SKIPPED_BITS_NONZERO otherwise.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#amdV1")
    void amdLevelSkippingTranslatesOnlyWithZeroSkippedBits(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            int top = format.topLevel();
            long granule = 1L << format.itemShift(0);
            long iova = (3L << format.itemShift(top)) | (7L << format.itemShift(0)); // skipped indexes all zero
            long pa = 0x1234L * granule;
            long level0 = f.memory.allocateFrame();
            f.memory.write64(level0 + 8L * 7, format.leafEntry(pa, format.itemShift(0), 0, Prot.READ_WRITE));
            long rootSlot = f.table.rootAddress() + 8L * 3;
            long skipping = format.tableEntry(level0, 1); // NextLevel 1: a level-0 table, from the top
            assertThat(format.childLevel(skipping, top)).isZero();
            f.memory.write64(rootSlot, skipping);

            assertTranslates(f.table, f.walker, iova + 5, pa + 5);
            WalkResult result = new WalkResult();
            assertThat(f.walker.walk(format, f.table.rootAddress(), iova, Access.READ, 0, result)).isEqualTo(WalkStatus.OK);
            assertThat(result.tableReads()).as("a skipping walk reads two entries").isEqualTo(2);
            for (int skipped = 1; skipped < top; skipped++) {
                long bad = iova | (1L << format.itemShift(skipped));
                assertThat(f.walker.walk(format, f.table.rootAddress(), bad, Access.READ, 0, result))
                        .as("%s: index bit of skipped level %d set", config, skipped).isEqualTo(WalkStatus.SKIPPED_BITS_NONZERO);
                assertThat(result.level()).isEqualTo(top);
            }
            // The same pointer with NextLevel equal to its own level, or above it, does not descend.
            for (int next = top + 1; next <= 6; next++) {
                long climbing = (skipping & ~(7L << 9)) | ((long) next << 9);
                f.memory.write64(rootSlot, climbing);
                assertThat(f.walker.walk(format, f.table.rootAddress(), iova, Access.READ, 0, result))
                        .as("%s: top entry with NextLevel %d", config, next).isEqualTo(WalkStatus.RESERVED_BITS);
                assertThat(result.level()).isEqualTo(top);
            }
            f.memory.write64(rootSlot, 0);
            f.memory.free(level0, PhysicalMemory.FRAME_BYTES);
            assertNotMapped(f.table, f.walker, iova);
        }
    }

    /** A leaf AMD cannot hold: at the top level, a level-0 entry with a table NextLevel, a size-encoded leaf smaller than its slot. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#amdV1")
    void amdImpossibleLeavesAreReserved(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            int top = format.topLevel();
            long iova = spreadIova(format);
            long granule = 1L << format.itemShift(0);
            long topSlot = f.table.rootAddress() + ((long) format.index(iova, top) << 3);
            f.memory.write64(topSlot, format.leafEntry(0, format.itemShift(top), top, Prot.READ));
            assertThat(walk(f, iova, Access.READ, 0)).as("leaf at the top").isEqualTo(WalkStatus.RESERVED_BITS);
            f.memory.write64(topSlot, 0);

            f.table.map(iova, 0x40L * granule, granule, Prot.READ_WRITE);
            long leafSlot = slotAddress(f.table, f.memory, iova, 0);
            long leaf = f.memory.read64(leafSlot);
            f.memory.write64(leafSlot, (leaf & ~(7L << 9)) | (3L << 9));
            assertThat(walk(f, iova, Access.READ, 0)).as("level-0 entry with NextLevel 3").isEqualTo(WalkStatus.RESERVED_BITS);
            f.memory.write64(leafSlot, leaf);
            assertTranslates(f.table, f.walker, iova, 0x40L * granule);
            f.table.unmap(iova, granule);

            // Size-encoded (NextLevel 7) leaf at level 1 encoding two granules: smaller than one slot there.
            long big = 1L << format.itemShift(1);
            f.table.map(iova & -big, 0, big, Prot.READ_WRITE);
            long slot1 = slotAddress(f.table, f.memory, iova & -big, 1);
            long natural = f.memory.read64(slot1);
            f.memory.write64(slot1, format.leafEntry(0, format.itemShift(0) + 1, 0, Prot.READ_WRITE));
            assertThat(walk(f, iova & -big, Access.READ, 0)).as("2-granule leaf at level 1").isEqualTo(WalkStatus.RESERVED_BITS);
            f.memory.write64(slot1, natural);
            assertTranslates(f.table, f.walker, iova & -big, 0);
        }
    }

    /**
     * A size-encoded leaf is replicated in every slot: the walker dirties only the slot it used,
     * read-and-clear reports the whole page and cleans every copy, and NO_CLEAR leaves them.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#amdV1")
    void amdReplicatedLeafIsDirtyAsAWholeAndCleanedInEverySlot(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            PageTableFormat format = f.format();
            int granuleShift = format.itemShift(0);
            int shift = granuleShift + 4;
            long size = 1L << shift;
            long iova = spreadIova(format) & -size;
            long pa = 0x77L << shift;
            f.table.map(iova, pa, size, Prot.READ_WRITE);
            long first = slotAddress(f.table, f.memory, iova, 0);
            for (int k = 0; k < 16; k++) {
                long entry = f.memory.read64(first + 8L * k);
                assertThat(format.leafShift(entry, 0)).as("slot %d", k).isEqualTo(shift);
                assertThat(format.dirty(entry)).isFalse();
                assertTranslates(f.table, f.walker, iova + ((long) k << granuleShift) + 3, pa + ((long) k << granuleShift) + 3);
            }

            WalkResult result = new WalkResult();
            long used = iova + (5L << granuleShift) + 8;
            assertThat(f.walker.walk(format, f.table.rootAddress(), used, Access.WRITE, BOTH, result)).isEqualTo(WalkStatus.OK);
            assertThat(result.leafShift()).isEqualTo(shift);
            assertThat(result.outputAddress()).isEqualTo(pa + (5L << granuleShift) + 8);
            for (int k = 0; k < 16; k++) {
                long entry = f.memory.read64(first + 8L * k);
                assertThat(format.dirty(entry)).as("slot %d dirty after a write through slot 5", k).isEqualTo(k == 5);
                assertThat(entry & AmdV1.A).as("slot %d accessed", k).isEqualTo(k == 5 ? AmdV1.A : 0);
            }

            DirtyBitmap noClear = new DirtyBitmap(iova, granuleShift, 32);
            f.table.readAndClearDirty(iova, 2 * size, noClear, true);
            assertThat(noClear.words()).as("NO_CLEAR: the whole page, not the next").containsExactly(0xFFFFL);
            assertThat(format.dirty(f.memory.read64(first + 8L * 5))).as("NO_CLEAR leaves the bit").isTrue();

            DirtyBitmap cleared = new DirtyBitmap(iova, granuleShift, 16);
            f.table.readAndClearDirty(iova + (9L << granuleShift), granule(format), cleared, false);
            assertThat(cleared.words()).as("a read of one slot reports the whole page (clipped to the bitmap)").containsExactly(0xFFFFL);
            for (int k = 0; k < 16; k++) {
                assertThat(format.dirty(f.memory.read64(first + 8L * k))).as("slot %d after clear", k).isFalse();
            }
            DirtyBitmap after = new DirtyBitmap(iova, granuleShift, 16);
            f.table.readAndClearDirty(iova, size, after, false);
            assertThat(after.cardinality()).isZero();
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static long granule(PageTableFormat format) {
        return Long.lowestOneBit(format.pageSizes());
    }

    /** {@return a low-half IOVA whose index at level l is 1 + l % 3: no two levels' slots look alike} */
    private static long spreadIova(PageTableFormat format) {
        long iova = 0;
        for (int level = 0; level < format.levels(); level++) {
            iova |= (1L + level % 3) << format.itemShift(level);
        }
        return lowBits(iova, format.inputBits() - 1);
    }

    /** {@return per level, the address of the entry the walk for iova reads} */
    private static long[] pathSlots(PageTableFixture f, long iova) {
        long[] slots = new long[f.format().levels()];
        for (int level = 0; level < slots.length; level++) {
            slots[level] = slotAddress(f.table, f.memory, iova, level);
        }
        return slots;
    }

    private static long[] read(PageTableFixture f, long[] slots) {
        long[] values = new long[slots.length];
        for (int i = 0; i < slots.length; i++) {
            values[i] = f.memory.read64(slots[i]);
        }
        return values;
    }

    private static WalkStatus walk(PageTableFixture f, long iova, int access, int flags) {
        return f.walker.walk(f.format(), f.table.rootAddress(), iova, access, flags, new WalkResult());
    }
}
