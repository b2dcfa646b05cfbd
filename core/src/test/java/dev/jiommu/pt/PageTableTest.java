package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.FormatConfigs.FormatConfig;
import dev.jiommu.pt.format.VtdSecondStage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.jiommu.pt.PageTableAssertions.assertErrno;
import static dev.jiommu.pt.PageTableAssertions.assertNotMapped;
import static dev.jiommu.pt.PageTableAssertions.assertTranslates;
import static dev.jiommu.pt.PageTableAssertions.leafCount;
import static dev.jiommu.pt.PageTableAssertions.leafCountsByShift;
import static dev.jiommu.pt.PageTableAssertions.snapshot;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link PageTable} rules the kernel ports do not reach: argument edges, restricted page sizes, unmap shapes, destroy. */
class PageTableTest {
    private static final long SZ_2M = 1L << 21;

    /** No map can reach past the output range, however long: lengths of 2^63 and more included (unsigned). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.jiommu.pt.FormatConfigs#all")
    void mapRefusesLengthsPastTheOutputRange(FormatConfig config) {
        try (PageTableFixture f = new PageTableFixture(config.format())) {
            long granule = Long.lowestOneBit(f.format().pageSizes());
            var before = snapshot(f.table, f.memory);
            long outputSpan = 1L << f.format().outputBits();
            assertErrno(Errno.ERANGE, () -> f.table.map(0, 0, outputSpan + granule, Prot.READ));
            assertErrno(Errno.ERANGE, () -> f.table.map(0, granule, outputSpan, Prot.READ));
            assertErrno(Errno.ERANGE, () -> f.table.map(0, 0, Long.MIN_VALUE, Prot.READ));
            assertErrno(Errno.ERANGE, () -> f.table.map(0, 0, -granule, Prot.READ));
            assertErrno(Errno.ERANGE, () -> f.table.map(granule, outputSpan, granule, Prot.READ));
            assertThat(snapshot(f.table, f.memory)).isEqualTo(before);
        }
    }

    @Test
    void mapUsesOnlyThePageSizesTheTableWasGiven() {
        VtdSecondStage format = new VtdSecondStage(4);
        long only4kAnd2m = (1L << 12) | (1L << 21);
        try (PageTableFixture f = new PageTableFixture(format, PageTableFixture.MEMORY_BYTES)) {
            f.table.map(1L << 30, 1L << 30, 1L << 30, Prot.READ_WRITE);
            assertThat(leafCountsByShift(f.table)[30]).isEqualTo(1);
        }
        try (PageTableFixture f = new PageTableFixture(format, PhysicalMemory.create(PageTableFixture.MEMORY_BYTES), only4kAnd2m)) {
            f.table.map(1L << 30, 1L << 30, (1L << 30) + 4096, Prot.READ_WRITE);
            long[] counts = leafCountsByShift(f.table);
            assertThat(counts[21]).isEqualTo(512);
            assertThat(counts[12]).isEqualTo(1);
            assertThat(counts[30]).isZero();
            assertTranslates(f.table, f.walker, (1L << 30) + 0x1234_5678L, (1L << 30) + 0x1234_5678L);
            assertThat(f.table.unmap(1L << 30, (1L << 30) + 4096)).isEqualTo((1L << 30) + 4096);
        }
    }

    @Test
    void unmapStartingInsideAPageRemovesNothing() {
        try (PageTableFixture f = new PageTableFixture(new VtdSecondStage(4))) {
            f.table.map(0, 0, SZ_2M, Prot.READ_WRITE);
            f.table.map(SZ_2M, SZ_2M, SZ_2M, Prot.READ_WRITE);
            assertThat(f.table.unmap(4096, 2 * SZ_2M)).isZero();
            assertThat(leafCount(f.table)).isEqualTo(2);
            assertTranslates(f.table, f.walker, SZ_2M + 4096, SZ_2M + 4096);
            assertThat(f.table.unmap(0, 2 * SZ_2M)).isEqualTo(2 * SZ_2M);
        }
    }

    @Test
    void unmapSkipsHolesAndCountsOnlyWhatItRemoved() {
        try (PageTableFixture f = new PageTableFixture(new VtdSecondStage(4))) {
            f.table.map(0, 0, 4096, Prot.READ_WRITE);
            f.table.map(1L << 39, 0, SZ_2M, Prot.READ_WRITE);
            assertThat(f.table.tablePages()).isEqualTo(1 + 2 + 1 + 2); // root, two level-2, one level-1 each side, one level-0
            assertThat(f.table.unmap(0, 1L << 40)).isEqualTo(4096 + SZ_2M);
            assertThat(f.table.tablePages()).isEqualTo(1);
            assertNotMapped(f.table, f.walker, 1L << 39);
        }
    }

    @Test
    void aDestroyedTableRefusesUseAndDestroysOnce() {
        try (PageTableFixture f = new PageTableFixture(new VtdSecondStage(3))) {
            f.table.map(0, 0, 4096, Prot.READ);
            f.table.destroy();
            f.table.destroy();
            assertThatThrownBy(() -> f.table.map(4096, 0, 4096, Prot.READ)).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(() -> f.table.iovaToPhys(0)).isInstanceOf(IllegalStateException.class);
            assertThat(f.table.tablePages()).isZero();
        }
    }
}
