package dev.jiommu.pt.format;

import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.PageTableWalker;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.WalkResult;
import dev.jiommu.pt.WalkStatus;
import dev.jiommu.pt.format.ArmLpae.Granule;
import dev.jiommu.pt.format.ArmLpae.Stage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static dev.jiommu.pt.PageTableWalker.UPDATE_ACCESSED;
import static dev.jiommu.pt.PageTableWalker.UPDATE_DIRTY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link ArmLpae}: geometry, descriptor encodings, and what the hardware walk makes of them. */
class ArmLpaeTest {
    private static final long SZ_4K = 1L << 12;
    private static final long SZ_2M = 1L << 21;
    private static final long SZ_1G = 1L << 30;
    private static final int RW = Prot.READ | Prot.WRITE;

    private PhysicalMemory memory;
    private long framesBefore;
    private PageTable table;
    private PageTableWalker walker;
    private final WalkResult result = new WalkResult();

    @BeforeEach
    void setUp() {
        memory = PhysicalMemory.create(64L << 20);
        framesBefore = memory.allocatedFrames();
        walker = new PageTableWalker(memory);
    }

    @AfterEach
    void tearDown() {
        if (table != null) {
            table.destroy();
        }
        assertThat(memory.allocatedFrames()).as("table pages left allocated after destroy").isEqualTo(framesBefore);
        memory.close();
    }

    // ---- geometry ----------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1} ias={2}: {4} levels from Arm level {5}, top table 2^{6} entries")
    @CsvSource({
            // stage, granule, ias, oas, levels, start level, top index bits, concatenated tables
            "S1, SZ_4K,  48, 48, 4, 0,  9, 1",
            "S2, SZ_4K,  48, 48, 4, 0,  9, 1",
            "S1, SZ_4K,  40, 40, 4, 0,  1, 1",
            "S2, SZ_4K,  40, 40, 3, 1, 10, 2",
            "S2, SZ_4K,  42, 48, 3, 1, 12, 8",
            "S2, SZ_4K,  44, 44, 4, 0,  5, 1",  // 32 start entries: more than 16, no concatenation
            "S1, SZ_4K,  39, 40, 3, 1,  9, 1",
            "S2, SZ_4K,  32, 32, 3, 1,  2, 1",
            "S1, SZ_16K, 48, 48, 4, 0,  1, 1",
            "S2, SZ_16K, 48, 48, 3, 1, 12, 2",
            "S1, SZ_16K, 47, 48, 3, 1, 11, 1",
            "S2, SZ_16K, 40, 40, 3, 1,  4, 1",
            "S1, SZ_16K, 36, 36, 2, 2, 11, 1",
            "S1, SZ_64K, 48, 48, 3, 1,  6, 1",
            "S2, SZ_64K, 48, 48, 3, 1,  6, 1",
            "S1, SZ_64K, 42, 42, 2, 2, 13, 1",
            "S2, SZ_64K, 32, 32, 2, 2,  3, 1",
    })
    void geometryFollowsGranuleAndInputSize(Stage stage, Granule granule, int ias, int oas, int levels, int startLevel,
                                            int topIndexBits, int concatenated) {
        ArmLpae f = new ArmLpae(stage, granule, ias, oas);
        int bitsPerLevel = granule.shift() - 3;
        assertThat(f.levels()).isEqualTo(levels);
        assertThat(f.startLevel()).isEqualTo(startLevel);
        assertThat(f.indexBits(f.topLevel())).isEqualTo(topIndexBits);
        assertThat(f.concatenatedTables()).isEqualTo(concatenated);
        assertThat(f.tableBytes(f.topLevel())).isEqualTo(8L << topIndexBits);
        assertThat(f.inputBits()).isEqualTo(ias);
        assertThat(f.outputBits()).isEqualTo(oas);
        for (int level = 0; level < levels; level++) {
            assertThat(f.hardwareLevel(level)).isEqualTo(3 - level);
            assertThat(f.itemShift(level)).isEqualTo(granule.shift() + level * bitsPerLevel);
            if (level < f.topLevel()) {
                assertThat(f.indexBits(level)).isEqualTo(bitsPerLevel);
                assertThat(f.tableBytes(level)).isEqualTo(granule.bytes());
            }
        }
        if (concatenated > 1) {
            assertThat(f.tableBytes(f.topLevel())).isEqualTo(concatenated * granule.bytes());
        }
        assertThat(f.name()).isEqualTo("arm-lpae-%s-%dk-ias%d-oas%d", stage.name().toLowerCase(java.util.Locale.ROOT), granule.bytes() >> 10, ias, oas);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Granule.class)
    void pageSizesSitAtTheirArmLevelsAndNeverAtLevelZero(Granule granule) {
        ArmLpae f = new ArmLpae(Stage.S1, granule, 48, 48);
        long block = switch (granule) {
            case SZ_4K -> 1L << 21;
            case SZ_16K -> 1L << 25;
            case SZ_64K -> 1L << 29;
        };
        long expected = granule.bytes() | block | (granule == Granule.SZ_4K ? SZ_1G : 0);
        assertThat(f.pageSizes()).isEqualTo(expected);
        assertThat(f.hardwareLevel(f.levelOfPageShift(granule.shift()))).isEqualTo(3);
        assertThat(f.hardwareLevel(f.levelOfPageShift(Long.numberOfTrailingZeros(block)))).isEqualTo(2);
        if (granule == Granule.SZ_4K) {
            assertThat(f.hardwareLevel(f.levelOfPageShift(30))).isEqualTo(1);
        }
        for (int level = 0; level < f.levels(); level++) {
            if (f.hardwareLevel(level) == 0 || (f.hardwareLevel(level) == 1 && granule != Granule.SZ_4K)) {
                assertThat(f.leafSizes(level)).as("Arm level %d", f.hardwareLevel(level)).isZero();
            }
        }
    }

    @Test
    void smallInputSizesDropTheLevelsThatWouldHoldBigBlocks() {
        ArmLpae f = new ArmLpae(Stage.S1, Granule.SZ_4K, 30, 32);
        assertThat(f.levels()).isEqualTo(2);
        assertThat(f.pageSizes()).isEqualTo(SZ_4K | SZ_2M);
    }

    @Test
    void constructorRefusesSizesTheArchitectureCannotExpress() {
        assertThatThrownBy(() -> new ArmLpae(Stage.S1, Granule.SZ_4K, 49, 48)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ArmLpae(Stage.S1, Granule.SZ_4K, 24, 48)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ArmLpae(Stage.S2, Granule.SZ_4K, 40, 39)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ArmLpae(Stage.S2, Granule.SZ_4K, 40, 52)).isInstanceOf(IllegalArgumentException.class);
    }

    @ParameterizedTest(name = "{0} ias={1}")
    @CsvSource({"SZ_4K, 40", "SZ_4K, 42", "SZ_16K, 48"})
    void concatenatedStartTableIsOneAlignedAllocationReachingItsLastEntry(Granule granule, int ias) {
        ArmLpae f = new ArmLpae(Stage.S2, granule, ias, 48);
        table = new PageTable(f, memory);
        long topBytes = f.tableBytes(f.topLevel());
        assertThat(table.tablePages()).isEqualTo((int) (topBytes / PhysicalMemory.FRAME_BYTES));
        assertThat(table.rootAddress() % topBytes).as("start table aligned to its size").isZero();

        long iova = (1L << ias) - granule.bytes();
        table.map(iova, 0x4000_0000L, granule.bytes(), RW);
        assertThat(walk(f, iova + 8, Access.READ, 0)).isEqualTo(WalkStatus.OK);
        assertThat(result.outputAddress()).isEqualTo(0x4000_0008L);
        long topIndex = (1L << f.indexBits(f.topLevel())) - 1;
        long topEntry = memory.read64(table.rootAddress() + topIndex * 8);
        assertThat(f.kind(topEntry, f.topLevel())).as("the last entry of the last concatenated table").isEqualTo(PageTableFormat.TABLE);
    }

    // ---- descriptor encodings ------------------------------------------------------------------------

    @Test
    void bitPositionsMatchTheReference() {
        // iommu-hardware.md §1.5, "VMSAv8-64 descriptor format"
        assertThat(ArmLpae.TYPE_BLOCK).isEqualTo(0b01);
        assertThat(ArmLpae.TYPE_TABLE_OR_PAGE).isEqualTo(0b11);
        assertThat(ArmLpae.ATTR_SHIFT).isEqualTo(2);
        assertThat(ArmLpae.AP_UNPRIV).isEqualTo(1L << 6);
        assertThat(ArmLpae.AP_RDONLY).isEqualTo(1L << 7);
        assertThat(ArmLpae.S2AP_READ).isEqualTo(1L << 6);
        assertThat(ArmLpae.S2AP_WRITE).isEqualTo(1L << 7);
        assertThat(ArmLpae.SH_INNER).isEqualTo(0b11L << 8);
        assertThat(ArmLpae.AF).isEqualTo(1L << 10);
        assertThat(ArmLpae.NG).isEqualTo(1L << 11);
        assertThat(ArmLpae.ADDR_MASK).isEqualTo(((1L << 48) - 1) & -(1L << 12));
        assertThat(ArmLpae.DBM).isEqualTo(1L << 51);
        assertThat(ArmLpae.CONTIGUOUS).isEqualTo(1L << 52);
        assertThat(ArmLpae.PXN).isEqualTo(1L << 53);
        assertThat(ArmLpae.XN).isEqualTo(1L << 54);
        assertThat(ArmLpae.PXN_TABLE).isEqualTo(1L << 59);
        assertThat(ArmLpae.XN_TABLE).isEqualTo(1L << 60);
        assertThat(ArmLpae.AP_TABLE_NO_EL0).isEqualTo(1L << 61);
        assertThat(ArmLpae.AP_TABLE_RDONLY).isEqualTo(1L << 62);
    }

    @Test
    void stageOneEntriesEncodeAsLinuxWritesThem() {
        ArmLpae f = new ArmLpae(Stage.S1, Granule.SZ_4K, 48, 48);
        // Page: 0b11, AttrIndx 1 (cacheable), AP[1], SH inner, AF, nG; DBM (writable-dirty); PXN|UXN.
        assertThat(f.leafEntry(0x1234_5000L, 12, 0, Prot.READ | Prot.WRITE | Prot.CACHE | Prot.NOEXEC))
                .isEqualTo(0x0068_0000_1234_5F47L);
        // 2 MiB block at Arm level 2: 0b01, AttrIndx 0, AP[2] (read-only), no AP[1] (privileged only).
        assertThat(f.leafEntry(0x4020_0000L, 21, 1, Prot.READ | Prot.PRIV)).isEqualTo(0x0000_0000_4020_0F81L);
        // MMIO: AttrIndx 2 wins over CACHE.
        assertThat(f.leafEntry(0x5000L, 12, 0, Prot.READ | Prot.MMIO | Prot.CACHE) & (0b111 << 2)).isEqualTo(2 << 2);
        assertThat(f.tableEntry(0x20_3000L, 2)).isEqualTo(0x20_3003L);
    }

    @Test
    void stageTwoEntriesEncodeS2apAndMemAttr() {
        ArmLpae f = new ArmLpae(Stage.S2, Granule.SZ_4K, 40, 40); // concatenated: the start table is Arm level 1
        // Page: 0b11, MemAttr 0b1111, S2AP read|write, SH inner, AF; DBM.
        assertThat(f.leafEntry(0x8_0000_0000L, 12, 0, RW | Prot.CACHE)).isEqualTo(0x0008_0008_0000_07FFL);
        // 1 GiB block at the concatenated start level: 0b01, MemAttr 0b0101 (NC), S2AP read, XN[1].
        assertThat(f.hardwareLevel(2)).isEqualTo(1);
        assertThat(f.leafEntry(0xC000_0000L, 30, 2, Prot.READ | Prot.NOEXEC)).isEqualTo(0x0040_0000_C000_0755L);
        // Device memory: MemAttr 0b0001.
        assertThat(f.leafEntry(0x5000L, 12, 0, Prot.READ | Prot.MMIO) & (0b1111 << 2)).isEqualTo(0b0001 << 2);
        // Write-only is expressible at stage 2.
        assertThat(f.leafPerms(f.leafEntry(0x5000L, 12, 0, Prot.WRITE), 0) & (PageTableFormat.PERM_READ | PageTableFormat.PERM_WRITE))
                .isEqualTo(PageTableFormat.PERM_WRITE);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("stagesAndGranules")
    void descriptorTypeDecidesKindPerLevel(Stage stage, Granule granule) {
        ArmLpae f = new ArmLpae(stage, granule, 48, 48);
        long pa = 0x4000_0000L;
        for (int level = 0; level < f.levels(); level++) {
            boolean blocks = level > 0 && f.leafSizes(level) != 0;
            assertThat(f.kind(pa, level)).isEqualTo(PageTableFormat.EMPTY);
            assertThat(f.kind(pa | 0b10, level)).isEqualTo(PageTableFormat.EMPTY);
            assertThat(f.kind(pa | 0b11, level)).isEqualTo(level == 0 ? PageTableFormat.LEAF : PageTableFormat.TABLE);
            assertThat(f.kind(pa | 0b01, level)).as("0b01 at Arm level %d", f.hardwareLevel(level))
                    .isEqualTo(blocks ? PageTableFormat.LEAF : PageTableFormat.EMPTY);
        }
        assertThat(f.kind(pa | 0b01, f.topLevel())).as("never a block at Arm level 0").isEqualTo(PageTableFormat.EMPTY);
    }

    static Stream<Object[]> stagesAndGranules() {
        return Stream.of(Stage.values()).flatMap(s -> Stream.of(Granule.values()).map(g -> new Object[] {s, g}));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("stagesAndGranules")
    void attributesRoundTripForEveryProtCombination(Stage stage, Granule granule) {
        ArmLpae f = new ArmLpae(stage, granule, 48, 48);
        int allProt = Prot.READ | Prot.WRITE | Prot.CACHE | Prot.NOEXEC | Prot.MMIO | Prot.PRIV;
        int checked = 0;
        for (int level = 0; level < f.levels(); level++) {
            if (f.leafSizes(level) == 0) {
                continue;
            }
            int shift = Long.numberOfTrailingZeros(f.leafSizes(level));
            for (long pa : new long[] {0, (1L << 48) - (1L << shift)}) {
                for (int prot = 0; prot <= allProt; prot++) {
                    if ((prot & RW) == 0) {
                        continue;
                    }
                    long entry = f.leafEntry(pa, shift, level, prot);
                    assertThat(f.kind(entry, level)).isEqualTo(PageTableFormat.LEAF);
                    assertThat(f.leafAddress(entry, level)).isEqualTo(pa);
                    assertThat(f.reservedBitsSet(entry, level)).isFalse();
                    int decoded = f.leafProt(entry, level);
                    assertThat(decoded).as("prot %s", Prot.describe(prot)).isEqualTo(expectedProt(stage, prot));
                    assertThat(f.leafEntry(pa, shift, level, decoded)).as("re-encoded").isEqualTo(entry);
                    assertThat(f.leafProt(f.cleanEntry(entry), level)).as("a cleaned leaf is still a writable mapping").isEqualTo(decoded);
                    checked++;
                }
            }
        }
        assertThat(checked).isPositive();
    }

    /** What survives encoding: S1 cannot say write-only; S2 has no privilege; MMIO wins over CACHE. */
    private static int expectedProt(Stage stage, int prot) {
        int memory = (prot & Prot.MMIO) != 0 ? Prot.MMIO : prot & Prot.CACHE;
        return stage == Stage.S1
                ? Prot.READ | (prot & (Prot.WRITE | Prot.NOEXEC | Prot.PRIV)) | memory
                : (prot & (Prot.READ | Prot.WRITE | Prot.NOEXEC)) | memory;
    }

    @Test
    void permissionsDecodeFromApS2apAndXn() {
        ArmLpae s1 = new ArmLpae(Stage.S1, Granule.SZ_4K, 48, 48);
        int p = PageTableFormat.PERM_READ;
        int w = PageTableFormat.PERM_WRITE;
        int x = PageTableFormat.PERM_EXEC;
        int u = PageTableFormat.PERM_USER;
        assertThat(s1.leafPerms(s1.leafEntry(0, 12, 0, RW), 0)).isEqualTo(p | w | x | u);
        assertThat(s1.leafPerms(s1.leafEntry(0, 12, 0, Prot.READ), 0)).isEqualTo(p | x | u);
        assertThat(s1.leafPerms(s1.leafEntry(0, 12, 0, RW | Prot.PRIV | Prot.NOEXEC), 0)).isEqualTo(p | w);
        assertThat(s1.leafPerms(s1.leafEntry(0, 12, 0, RW) | ArmLpae.PXN, 0) & x).as("PXN alone withholds exec").isZero();
        ArmLpae s2 = new ArmLpae(Stage.S2, Granule.SZ_4K, 48, 48);
        assertThat(s2.leafPerms(s2.leafEntry(0, 12, 0, Prot.READ), 0)).isEqualTo(p | x | u);
        assertThat(s2.leafPerms(s2.leafEntry(0, 12, 0, RW | Prot.NOEXEC | Prot.PRIV), 0)).isEqualTo(p | w | u);
        assertThat(s2.tablePerms(s2.tableEntry(0x1000, 1) | ArmLpae.AP_TABLE_RDONLY, 1)).as("no hierarchical attributes at S2")
                .isEqualTo(PageTableFormat.PERM_ALL);
    }

    // ---- dirty tracking with DBM ------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @EnumSource(Stage.class)
    void writeToCleanedPageFaultsWithoutHdAndDirtiesItWithHd(Stage stage) {
        ArmLpae f = new ArmLpae(stage, Granule.SZ_4K, 40, 40);
        table = new PageTable(f, memory);
        long iova = 0x1234_5000L;
        table.map(iova, 0x8000_0000L, SZ_4K, RW);
        long slot = leafSlot(f, iova);
        assertThat(f.dirty(memory.read64(slot))).as("a fresh writable leaf is writable-dirty").isTrue();

        assertThat(readAndClearDirty(iova, false)).as("the fresh page reports dirty").isTrue();
        long clean = memory.read64(slot);
        assertThat(f.dirty(clean)).isFalse();
        assertThat(f.writableWhenDirtied(clean)).isTrue();
        assertThat(clean & (stage == Stage.S1 ? ArmLpae.AP_RDONLY : ArmLpae.S2AP_WRITE))
                .as("cleaning sets AP[2] at S1, clears S2AP write at S2").isEqualTo(stage == Stage.S1 ? ArmLpae.AP_RDONLY : 0);
        assertThat(readAndClearDirty(iova, false)).as("a clean page reports clean").isFalse();

        assertThat(walk(f, iova, Access.WRITE, 0)).as("no HD: a write to a clean page faults").isEqualTo(WalkStatus.PERMISSION);
        assertThat(memory.read64(slot)).isEqualTo(clean);
        assertThat(walk(f, iova, Access.READ, UPDATE_DIRTY)).isEqualTo(WalkStatus.OK);
        assertThat(memory.read64(slot)).as("a read does not dirty").isEqualTo(clean);

        assertThat(walk(f, iova + 16, Access.WRITE, UPDATE_DIRTY)).as("HD: the write proceeds").isEqualTo(WalkStatus.OK);
        assertThat(result.outputAddress()).isEqualTo(0x8000_0010L);
        assertThat(f.dirty(memory.read64(slot))).as("and leaves the page dirty").isTrue();
        assertThat(memory.read64(slot)).isEqualTo(f.dirtyEntry(clean));

        assertThat(readAndClearDirty(iova, true)).as("NO_CLEAR reports").isTrue();
        assertThat(f.dirty(memory.read64(slot))).as("NO_CLEAR leaves it dirty").isTrue();
        assertThat(readAndClearDirty(iova, false)).isTrue();
        assertThat(memory.read64(slot)).isEqualTo(clean);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Stage.class)
    void readOnlyPageStaysReadOnlyUnderHd(Stage stage) {
        ArmLpae f = new ArmLpae(stage, Granule.SZ_16K, 36, 40);
        table = new PageTable(f, memory);
        table.map(0x4000L, 0x10_0000L, 0x4000L, Prot.READ);
        long entry = memory.read64(leafSlot(f, 0x4000L));
        assertThat(f.writableWhenDirtied(entry)).isFalse();
        assertThat(f.dirty(entry)).isFalse();
        assertThat(walk(f, 0x4000L, Access.WRITE, UPDATE_ACCESSED | UPDATE_DIRTY)).isEqualTo(WalkStatus.PERMISSION);
        assertThat(walk(f, 0x4000L, Access.READ, 0)).isEqualTo(WalkStatus.OK);
    }

    // ---- access flag and permission faults -----------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @EnumSource(Stage.class)
    void clearAccessFlagFaultsUnlessHardwareMaySetIt(Stage stage) {
        ArmLpae f = new ArmLpae(stage, Granule.SZ_64K, 42, 42);
        table = new PageTable(f, memory);
        long iova = 1L << 29;
        table.map(iova, 1L << 30, 1L << 29, RW);
        long slot = leafSlot(f, iova);
        long entry = memory.read64(slot);
        memory.write64(slot, entry & ~ArmLpae.AF);

        assertThat(walk(f, iova, Access.READ, 0)).isEqualTo(WalkStatus.ACCESS_FLAG);
        assertThat(result.hardwareLevel()).isEqualTo(2);
        assertThat(walk(f, iova, Access.READ, UPDATE_ACCESSED)).as("HA sets AF").isEqualTo(WalkStatus.OK);
        assertThat(memory.read64(slot)).isEqualTo(entry);
        assertThat(f.accessedEntry(entry & ~ArmLpae.AF, 1)).isEqualTo(entry);
        long tableEntry = f.tableEntry(0x30_0000L, 1);
        assertThat(f.accessedEntry(tableEntry, 1)).as("tables have no AF").isEqualTo(tableEntry);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Stage.class)
    void permissionFaultsForWriteToReadOnlyAndExecOfNoexec(Stage stage) {
        ArmLpae f = new ArmLpae(stage, Granule.SZ_4K, 48, 48);
        table = new PageTable(f, memory);
        table.map(0, 0x10_0000L, SZ_4K, Prot.READ | Prot.NOEXEC);
        table.map(SZ_2M, 0x20_0000L, SZ_2M, RW);
        assertThat(walk(f, 0, Access.WRITE, 0)).isEqualTo(WalkStatus.PERMISSION);
        assertThat(result.hardwareLevel()).isEqualTo(3);
        assertThat(walk(f, 0, Access.EXEC, 0)).isEqualTo(WalkStatus.PERMISSION);
        assertThat(walk(f, 0, Access.READ, 0)).isEqualTo(WalkStatus.OK);
        assertThat(walk(f, SZ_2M + 4, Access.EXEC | Access.READ, 0)).isEqualTo(WalkStatus.OK);
        assertThat(result.hardwareLevel()).isEqualTo(2);
        assertThat(result.outputAddress()).isEqualTo(0x20_0004L);
    }

    @Test
    void stageOnePrivMappingRefusesUnprivilegedRequests() {
        ArmLpae f = new ArmLpae(Stage.S1, Granule.SZ_4K, 39, 40);
        table = new PageTable(f, memory);
        table.map(0x7000L, 0x7000L, SZ_4K, RW | Prot.PRIV);
        assertThat(walk(f, 0x7000L, Access.READ, 0)).isEqualTo(WalkStatus.PERMISSION);
        assertThat(walk(f, 0x7000L, Access.READ | Access.WRITE | Access.PRIV, 0)).isEqualTo(WalkStatus.OK);
    }

    @Test
    void stageTwoIgnoresPrivilege() {
        ArmLpae f = new ArmLpae(Stage.S2, Granule.SZ_4K, 40, 40);
        table = new PageTable(f, memory);
        table.map(0x7000L, 0x7000L, SZ_4K, Prot.WRITE | Prot.PRIV);
        assertThat(walk(f, 0x7000L, Access.WRITE, 0)).isEqualTo(WalkStatus.OK);
        assertThat(walk(f, 0x7000L, Access.READ | Access.PRIV, 0)).as("write-only").isEqualTo(WalkStatus.PERMISSION);
    }

    @Test
    void stageOneTableAttributesRestrictEverythingBelow() {
        ArmLpae f = new ArmLpae(Stage.S1, Granule.SZ_4K, 48, 48);
        table = new PageTable(f, memory);
        table.map(0x1000L, 0x1000L, SZ_4K, RW);
        long topSlot = table.rootAddress() + 8L * f.index(0x1000L, f.topLevel());
        long pointer = memory.read64(topSlot);
        memory.write64(topSlot, pointer | ArmLpae.AP_TABLE_RDONLY);
        assertThat(walk(f, 0x1000L, Access.WRITE, 0)).isEqualTo(WalkStatus.PERMISSION);
        memory.write64(topSlot, pointer | ArmLpae.AP_TABLE_NO_EL0);
        assertThat(walk(f, 0x1000L, Access.READ, 0)).isEqualTo(WalkStatus.PERMISSION);
        assertThat(walk(f, 0x1000L, Access.READ | Access.WRITE | Access.PRIV, 0)).isEqualTo(WalkStatus.OK);
        memory.write64(topSlot, pointer | ArmLpae.XN_TABLE);
        assertThat(walk(f, 0x1000L, Access.EXEC, 0)).isEqualTo(WalkStatus.PERMISSION);
        memory.write64(topSlot, pointer);
        assertThat(walk(f, 0x1000L, Access.EXEC | Access.WRITE, 0)).isEqualTo(WalkStatus.OK);
    }

    @Test
    void hardwareDirtyUpdateDoesNotOverrideTableReadOnly() {
        ArmLpae f = new ArmLpae(Stage.S1, Granule.SZ_4K, 48, 48);
        table = new PageTable(f, memory);
        table.map(0x1000L, 0x1000L, SZ_4K, RW);
        long slot = leafSlot(f, 0x1000L);
        assertThat(readAndClearDirty(0x1000L, false)).isTrue();
        long clean = memory.read64(slot);
        long topSlot = table.rootAddress() + 8L * f.index(0x1000L, f.topLevel());
        long pointer = memory.read64(topSlot);
        memory.write64(topSlot, pointer | ArmLpae.AP_TABLE_RDONLY);
        assertThat(walk(f, 0x1000L, Access.WRITE, UPDATE_ACCESSED | UPDATE_DIRTY))
                .as("APTable[1] forbids the write whatever the leaf's DBM says").isEqualTo(WalkStatus.PERMISSION);
        assertThat(memory.read64(slot)).as("and the leaf stays clean").isEqualTo(clean);
        memory.write64(topSlot, pointer);
        assertThat(walk(f, 0x1000L, Access.WRITE, UPDATE_ACCESSED | UPDATE_DIRTY)).isEqualTo(WalkStatus.OK);
    }

    // ---- hostile tables ---------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("stagesAndGranules")
    void tablePointerToUnallocatedMemoryAbortsTheFetch(Stage stage, Granule granule) {
        ArmLpae f = new ArmLpae(stage, granule, 48, 48);
        table = new PageTable(f, memory);
        long nowhere = (memory.endAddress() - granule.bytes()) & -granule.bytes();
        assertThat(memory.isBacked(nowhere, 8)).isFalse();
        long iova = 0x12_3456_0000L;
        long topSlot = table.rootAddress() + 8L * f.index(iova, f.topLevel());
        try {
            memory.write64(topSlot, f.tableEntry(nowhere, f.topLevel()));
            assertThat(walk(f, iova, Access.READ, 0)).isEqualTo(WalkStatus.TABLE_FETCH_ABORT);
            assertThat(result.hardwareLevel()).isEqualTo(f.startLevel() + 1);
            assertThat(result.entryAddress()).isEqualTo(nowhere + 8L * f.index(iova, f.topLevel() - 1));
            memory.write64(topSlot, f.tableEntry(1L << 47, f.topLevel()));
            assertThat(walk(f, iova, Access.READ, 0)).as("outside physical memory").isEqualTo(WalkStatus.TABLE_FETCH_ABORT);
        } finally {
            memory.write64(topSlot, 0); // destroy must not free what it never allocated
        }
    }

    @Test
    void malformedEntriesFaultAsTranslationOrReserved() {
        ArmLpae f = new ArmLpae(Stage.S2, Granule.SZ_4K, 40, 40); // start table at Arm level 1: 1 GiB blocks
        table = new PageTable(f, memory);
        int top = f.topLevel();
        long slot = table.rootAddress() + 8L * f.index(SZ_1G, top);
        long block = f.leafEntry(SZ_1G, 30, top, RW);
        try {
            memory.write64(slot, block);
            assertThat(walk(f, SZ_1G + 5, Access.READ, 0)).isEqualTo(WalkStatus.OK);
            memory.write64(slot, block | SZ_2M);
            assertThat(f.leafAddress(block | SZ_2M, top)).as("the address of a block is aligned to it").isEqualTo(SZ_1G);
            assertThat(walk(f, SZ_1G, Access.READ, 0)).as("block address not aligned to 1 GiB").isEqualTo(WalkStatus.RESERVED_BITS);
            memory.write64(slot, f.leafEntry(1L << 40, 30, top, RW));
            assertThat(walk(f, SZ_1G, Access.READ, 0)).as("output at 2^OAS").isEqualTo(WalkStatus.RESERVED_BITS);
            memory.write64(slot, block | (1L << 48));
            assertThat(walk(f, SZ_1G, Access.READ, 0)).as("bit 48 is RES0").isEqualTo(WalkStatus.RESERVED_BITS);
            memory.write64(slot, block & ~0b11L);
            assertThat(walk(f, SZ_1G, Access.READ, 0)).isEqualTo(WalkStatus.NOT_PRESENT);
            memory.write64(slot, block | ArmLpae.CONTIGUOUS);
            assertThat(walk(f, SZ_1G, Access.READ, 0)).as("the contiguous hint changes nothing").isEqualTo(WalkStatus.OK);
        } finally {
            memory.write64(slot, 0);
        }

        table.map(0, 0x10_0000L, SZ_4K, RW);
        long pageSlot = leafSlot(f, 0);
        long page = memory.read64(pageSlot);
        memory.write64(pageSlot, (page & ~0b11L) | ArmLpae.TYPE_BLOCK);
        assertThat(walk(f, 0, Access.READ, 0)).as("0b01 at Arm level 3 is invalid").isEqualTo(WalkStatus.NOT_PRESENT);
        assertThat(result.hardwareLevel()).isEqualTo(3);
        memory.write64(pageSlot, page);
    }

    @Test
    void blockDescriptorAtArmLevelZeroIsATranslationFault() {
        ArmLpae f = new ArmLpae(Stage.S1, Granule.SZ_4K, 48, 48);
        table = new PageTable(f, memory);
        long slot = table.rootAddress();
        memory.write64(slot, ArmLpae.TYPE_BLOCK | ArmLpae.AF | ArmLpae.AP_UNPRIV);
        assertThat(walk(f, 0, Access.READ, 0)).isEqualTo(WalkStatus.NOT_PRESENT);
        assertThat(result.hardwareLevel()).isZero();
        memory.write64(slot, 0);
    }

    // ---- both oracles against a reference, randomized ------------------------------------------------

    static LongStream seeds() {
        return Long.getLong("jiommu.seed") != null ? LongStream.of(Long.getLong("jiommu.seed")) : LongStream.of(1, 2, 3, 4, 5, 6);
    }

    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void randomMapsAndUnmapsAgreeWithAReferenceAndTheWalker(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Stage stage = Stage.values()[random.nextInt(2)];
        Granule granule = Granule.values()[random.nextInt(3)];
        int[] sizes = {32, 36, 40, 42, 44, 48};
        int oasIndex = random.nextInt(sizes.length);
        ArmLpae f = new ArmLpae(stage, granule, sizes[random.nextInt(oasIndex + 1)], sizes[oasIndex]);
        String context = "seed=" + seed + " " + f.name();
        table = new PageTable(f, memory);
        TreeMap<Long, long[]> reference = new TreeMap<>(); // iova -> {pa, size}
        long[] pageSizes = LongStream.range(0, 64).filter(b -> (f.pageSizes() >>> b & 1) != 0).map(b -> 1L << b).toArray();
        long window = Math.min(1L << f.inputBits(), 8 * pageSizes[pageSizes.length - 1]);
        for (int step = 0; step < 200; step++) {
            long size = pageSizes[random.nextInt(pageSizes.length)];
            long iova = random.nextLong(window / size) * size;
            var below = reference.floorEntry(iova + size - 1);
            boolean overlaps = below != null && below.getKey() + below.getValue()[1] > iova;
            if (overlaps) {
                long unmapped = table.unmap(below.getKey(), below.getValue()[1]);
                assertThat(unmapped).as(context).isEqualTo(below.getValue()[1]);
                reference.remove(below.getKey());
            } else {
                long pa = random.nextLong((1L << f.outputBits()) / size) * size;
                table.map(iova, pa, size, RW);
                reference.put(iova, new long[] {pa, size});
            }
            long probe = random.nextLong(window);
            var hit = reference.floorEntry(probe);
            long expected = hit != null && probe < hit.getKey() + hit.getValue()[1] ? hit.getValue()[0] + (probe - hit.getKey()) : PageTable.NOT_MAPPED;
            assertThat(table.iovaToPhys(probe)).as("%s iovaToPhys(0x%x)", context, probe).isEqualTo(expected);
            WalkStatus status = walk(f, probe, Access.READ | Access.WRITE, 0);
            if (expected == PageTable.NOT_MAPPED) {
                assertThat(status).as("%s walk(0x%x)", context, probe).isEqualTo(WalkStatus.NOT_PRESENT);
            } else {
                assertThat(status).as("%s walk(0x%x)", context, probe).isEqualTo(WalkStatus.OK);
                assertThat(result.outputAddress()).as("%s walk(0x%x)", context, probe).isEqualTo(expected);
            }
        }
    }

    // ---- helpers ----------------------------------------------------------------------------------------

    private WalkStatus walk(ArmLpae f, long iova, int access, int flags) {
        return walker.walk(f, table.rootAddress(), iova, access, flags, result);
    }

    /** {@return the physical address of the leaf entry that maps {@code iova} (found by a hardware walk)} */
    private long leafSlot(ArmLpae f, long iova) {
        assertThat(walk(f, iova, Access.READ | Access.PRIV, 0)).isEqualTo(WalkStatus.OK);
        return result.entryAddress();
    }

    /** {@return whether the page at {@code iova} was reported dirty} */
    private boolean readAndClearDirty(long iova, boolean noClear) {
        int shift = Long.numberOfTrailingZeros(table.pageSizes());
        DirtyBitmap bitmap = new DirtyBitmap(iova, shift, 1);
        table.readAndClearDirty(iova, 1L << shift, bitmap, noClear);
        return bitmap.isSet(0);
    }
}
