package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.format.AmdV1;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The live-entry count each table keeps in its frame's owner word: map and unmap add it up once per
 * table rather than once per leaf, so these check that a table is freed exactly when it empties,
 * after multi-leaf maps, mixed page sizes and a map undone half way.
 */
class PageTableLiveCountTest {
    private static final long SZ_4K = 1L << 12;
    private static final long SZ_2M = 1L << 21;
    private static final long IOVA = 1L << 39;
    /** An odd frame: keeps every leaf 4 KiB, even on AMD v1, which would otherwise merge 1 MiB into one leaf. */
    private static final long ODD_PA = (1L << 40) + SZ_4K;

    private final PhysicalMemory memory = PhysicalMemory.create(16L << 20);

    static List<Named<Supplier<PageTableFormat>>> formats() {
        return List.of(Named.of("vtd-ss", () -> new VtdSecondStage(4)), Named.of("x86-64", () -> new X86_64(4, true)),
                Named.of("amd-v1", () -> new AmdV1(4)));
    }

    @AfterEach
    void closeMemory() {
        memory.close();
    }

    @ParameterizedTest
    @MethodSource("formats")
    void unmapOfAMultiLeafMapFreesEveryTableItBuilt(Supplier<PageTableFormat> format) {
        PageTable table = new PageTable(format.get(), memory);
        table.map(IOVA, ODD_PA, 256 * SZ_4K, Prot.READ_WRITE);
        assertThat(table.tablePages()).isEqualTo(4);

        assertThat(table.unmap(IOVA, 128 * SZ_4K)).isEqualTo(128 * SZ_4K);
        assertThat(table.tablePages()).isEqualTo(4);
        assertThat(table.unmap(IOVA + 128 * SZ_4K, 128 * SZ_4K)).isEqualTo(128 * SZ_4K);

        assertThat(table.tablePages()).isEqualTo(1);
        assertThat(memory.allocatedFrames()).isEqualTo(1);
    }

    @ParameterizedTest
    @MethodSource("formats")
    void mapOfMixedPageSizesFreesTheirTablesOnlyWhenAllAreGone(Supplier<PageTableFormat> format) {
        PageTable table = new PageTable(format.get(), memory);
        // A 2 MiB leaf in the level-1 table, then a 4 KiB leaf in a level-0 table below the same one.
        table.map(IOVA, 1L << 40, SZ_2M + SZ_4K, Prot.READ_WRITE);
        assertThat(table.tablePages()).isEqualTo(4);

        assertThat(table.unmap(IOVA, SZ_2M)).isEqualTo(SZ_2M);
        assertThat(table.tablePages()).isEqualTo(4);
        assertThat(table.iovaToPhys(IOVA + SZ_2M)).isEqualTo((1L << 40) + SZ_2M);

        assertThat(table.unmap(IOVA + SZ_2M, SZ_4K)).isEqualTo(SZ_4K);
        assertThat(table.tablePages()).isEqualTo(1);
    }

    @ParameterizedTest
    @MethodSource("formats")
    void mapUndoneHalfWayLeavesTheCountsOfWhatWasThere(Supplier<PageTableFormat> format) {
        PageTable table = new PageTable(format.get(), memory);
        long blocker = IOVA + 100 * SZ_4K;
        table.map(blocker, 1L << 40, SZ_4K, Prot.READ);

        assertThatThrownBy(() -> table.map(IOVA, ODD_PA, 256 * SZ_4K, Prot.READ_WRITE))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EEXIST));
        assertThat(table.iovaToPhys(IOVA)).isEqualTo(PageTable.NOT_MAPPED);
        assertThat(table.iovaToPhys(blocker)).isEqualTo(1L << 40);
        assertThat(table.tablePages()).isEqualTo(4);

        assertThat(table.unmap(blocker, SZ_4K)).isEqualTo(SZ_4K);
        assertThat(table.tablePages()).isEqualTo(1);
    }

    @ParameterizedTest
    @MethodSource("formats")
    void unmapStartingInsideAPageRemovesNothingAndKeepsItsTables(Supplier<PageTableFormat> format) {
        PageTable table = new PageTable(format.get(), memory);
        table.map(IOVA, 1L << 40, SZ_2M, Prot.READ_WRITE);
        table.map(IOVA + SZ_2M, ODD_PA, 4 * SZ_4K, Prot.READ_WRITE);

        assertThat(table.unmap(IOVA + SZ_4K, SZ_2M)).isZero();
        assertThat(table.tablePages()).isEqualTo(4);

        assertThat(table.unmap(IOVA, SZ_2M + 4 * SZ_4K)).isEqualTo(SZ_2M + 4 * SZ_4K);
        assertThat(table.tablePages()).isEqualTo(1);
    }
}
