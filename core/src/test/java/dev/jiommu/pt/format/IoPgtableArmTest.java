package dev.jiommu.pt.format;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableWalker;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.WalkResult;
import dev.jiommu.pt.WalkStatus;
import dev.jiommu.pt.format.ArmLpae.Granule;
import dev.jiommu.pt.format.ArmLpae.Stage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Port of the kernel's io-pgtable-arm self-test (KUnit suite "io-pgtable-arm-test",
 * drivers/iommu/io-pgtable-arm-selftests.c; iommu-hardware.md §7.1): {@code arm_lpae_run_tests}
 * over the configurations {@code arm_lpae_do_selftests} builds, for both stages.
 *
 * <p>Two oracles answer every translation question: the driver side ({@link PageTable#iovaToPhys})
 * and the hardware side ({@link PageTableWalker#walk}); they must agree on every address. The
 * kernel's dummy TLB callbacks (every flush size is a page size) have no counterpart here: unmap
 * reports what it removed, and the test checks that instead. Teardown checks that destroying the
 * table gives back every table page.
 */
class IoPgtableArmTest {
    private static final long SZ_4K = 1L << 12;
    private static final long SZ_16K = 1L << 14;
    private static final long SZ_64K = 1L << 16;
    private static final long SZ_2M = 1L << 21;
    private static final long SZ_32M = 1L << 25;
    private static final long SZ_512M = 1L << 29;
    private static final long SZ_1G = 1L << 30;
    private static final long SZ_2G = 2L << 30;
    private static final int READ_WRITE_NOEXEC_CACHE = Prot.READ | Prot.WRITE | Prot.NOEXEC | Prot.CACHE;

    /** One run of {@code arm_lpae_run_tests}: the kernel's io_pgtable_cfg fields it varies, and the format. */
    record Cfg(long pgsizeBitmap, int ias, int oas, Stage stage) {
        ArmLpae format() {
            return new ArmLpae(stage, Granule.ofBytes(Long.lowestOneBit(pgsizeBitmap)), ias, oas);
        }

        @Override
        public String toString() {
            return String.format("%s pgsize_bitmap=0x%08x ias=%d oas=%d", stage, pgsizeBitmap, ias, oas);
        }
    }

    /** The kernel's configurations: three page-size sets, every IAS ≤ OAS (IAS > OAS is invalid for stage 2). */
    static Stream<Cfg> arm_lpae_do_selftests() {
        long[] pgsize = {SZ_4K | SZ_2M | SZ_1G, SZ_16K | SZ_32M, SZ_64K | SZ_512M};
        int[] addressSize = {32, 36, 40, 42, 44, 48};
        List<Cfg> cfgs = new ArrayList<>();
        for (long sizes : pgsize) {
            for (int j = 0; j < addressSize.length; j++) {
                for (int k = 0; k <= j; k++) {
                    for (Stage stage : Stage.values()) {
                        cfgs.add(new Cfg(sizes, addressSize[k], addressSize[j], stage));
                    }
                }
            }
        }
        return cfgs.stream();
    }

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

    @ParameterizedTest(name = "{0}")
    @MethodSource("arm_lpae_do_selftests")
    void arm_lpae_run_tests(Cfg cfg) {
        ArmLpae format = cfg.format();
        assertThat(format.pageSizes()).as("the format's pgsize_bitmap").isEqualTo(cfg.pgsizeBitmap());
        assertThat(format.inputBits()).isEqualTo(cfg.ias());
        table = new PageTable(format, memory);

        // Initial sanity checks: an empty table provides no translation.
        checkNotMapped(42);
        checkNotMapped(SZ_1G + 42);
        checkNotMapped(SZ_2G + 42);

        // Distinct mappings of each page size, 1 GiB apart; an overlapping map fails and changes nothing.
        long iova = 0;
        for (long sizes = cfg.pgsizeBitmap(); sizes != 0; sizes &= sizes - 1) {
            long size = Long.lowestOneBit(sizes);
            table.map(iova, iova, size, READ_WRITE_NOEXEC_CACHE);
            long at = iova;
            assertThatThrownBy(() -> table.map(at, at + size, size, Prot.READ | Prot.NOEXEC))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EEXIST));
            checkMapped(iova + 42, iova + 42, size, Access.READ | Access.WRITE);
            iova += SZ_1G;
        }

        // Full unmap returns exactly each page's size; the page then remaps write-only.
        iova = 0;
        for (long sizes = cfg.pgsizeBitmap(); sizes != 0; sizes &= sizes - 1) {
            long size = Long.lowestOneBit(sizes);
            assertThat(table.unmap(iova, size)).as("bytes unmapped at iova=0x%x", iova).isEqualTo(size);
            checkNotMapped(iova + 42);
            table.map(iova, iova, size, Prot.WRITE);
            checkMapped(iova + 42, iova + 42, size, Access.WRITE);
            iova += SZ_1G;
        }

        // The last largest page of the IAS: the corner of a concatenated stage-2 start table.
        long size = Long.highestOneBit(cfg.pgsizeBitmap());
        iova = (1L << cfg.ias()) - size;
        table.map(iova, iova, size, READ_WRITE_NOEXEC_CACHE);
        assertThat(leavesAt(iova)).as("one leaf of the page size is mapped").containsExactly(size);
        checkMapped(iova + 42, iova + 42, size, Access.READ | Access.WRITE);
        checkMapped(iova + size - 1, iova + size - 1, size, Access.READ);
        assertThat(table.unmap(iova, size)).isEqualTo(size);
        checkNotMapped(iova + 42);
    }

    /** {@return the sizes of the leaves that start at {@code iova}} */
    private List<Long> leavesAt(long iova) {
        List<Long> sizes = new ArrayList<>();
        table.forEachLeaf((leafIova, pa, sizeShift, level, entry) -> {
            if (leafIova == iova) {
                sizes.add(1L << sizeShift);
            }
        });
        return sizes;
    }

    /** Both oracles: nothing translates {@code iova}. */
    private void checkNotMapped(long iova) {
        assertThat(table.iovaToPhys(iova)).as("iovaToPhys(0x%x)", iova).isEqualTo(PageTable.NOT_MAPPED);
        assertThat(walk(iova, Access.READ)).as("walk(0x%x) %s", iova, result).isEqualTo(WalkStatus.NOT_PRESENT);
    }

    /** Both oracles: {@code iova} translates to {@code pa} through a leaf of {@code size} bytes that allows {@code access}. */
    private void checkMapped(long iova, long pa, long size, int access) {
        assertThat(table.iovaToPhys(iova)).as("iovaToPhys(0x%x)", iova).isEqualTo(pa);
        assertThat(walk(iova, access)).as("walk(0x%x, %s) %s", iova, Access.describe(access), result).isEqualTo(WalkStatus.OK);
        assertThat(result.outputAddress()).as("walk(0x%x) output", iova).isEqualTo(pa);
        assertThat(1L << result.leafShift()).as("walk(0x%x) page size", iova).isEqualTo(size);
    }

    /** The hardware oracle: a walk as an SMMU without HA/HD does it. */
    private WalkStatus walk(long iova, int access) {
        return walker.walk(table.format(), table.rootAddress(), iova, access, 0, result);
    }
}
